"""Sessions read the proxy, CA-bundle and netrc settings once, with requests' own rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from imaging_pipeline.adapters.http import environment_read_once, session_for

URL = "http://fhir.example.test:8080/fhir/R4"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE"):
        for variant in (name, name.lower()):
            monkeypatch.delenv(variant, raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "absent-netrc"))


def test_settings_are_those_requests_would_read_per_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/hospital-ca.pem")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine fhir.example.test login svc password s3cret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    per_request = requests.Session().merge_environment_settings(URL, {}, None, None, None)

    session = environment_read_once(requests.Session(), URL)

    assert session.trust_env is False
    assert session.proxies == per_request["proxies"] == {"http": "http://proxy.example.test:3128"}
    assert session.verify == per_request["verify"] == "/etc/ssl/hospital-ca.pem"
    assert session.auth == ("svc", "s3cret")
    # Later changes to the environment no longer reach the session (read once, on purpose).
    monkeypatch.setenv("HTTP_PROXY", "http://other.example.test:3128")
    assert session.proxies["http"] == "http://proxy.example.test:3128"


def test_no_proxy_for_the_sessions_host_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("NO_PROXY", ".example.test")
    session = session_for(URL)
    assert session.proxies == {}
    assert session.verify is True
    assert session.auth is None
