"""Sessions read the proxy, CA-bundle and netrc settings once, with requests' own rules, and
read response bodies whole."""

from __future__ import annotations

import gzip
import http.server
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from imaging_pipeline.adapters.http import environment_read_once, session_for
from imaging_pipeline.adapters.whole_body import WholeBodyAdapter

from tests.support.local_http import serving

URL = "http://fhir.example.test:8080/fhir/R4"


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


class _Bodies(http.server.BaseHTTPRequestHandler):
    """Bodies as servers send them: with a length, chunked, gzipped, or cut short."""

    protocol_version = "HTTP/1.1"
    BODY = bytes(range(256)) * 2500  # 640 KB, like a radiograph

    def do_GET(self) -> None:
        body = self.BODY
        self.send_response(200)
        if self.path == "/gzip":
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 100_000):
                part = body[start : start + 100_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path == "/cut" else body)
        if self.path == "/cut":
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def bodies() -> Iterator[str]:
    with serving(_Bodies) as url:
        yield url


@pytest.mark.parametrize("path", ["/length", "/chunked", "/gzip"])
def test_bodies_are_read_whole_and_equal(
    bodies: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session reads a body in a read or a few, not requests' 10 KiB chunks, and gets the
    same bytes, headers and status requests would."""
    reads = []
    read = urllib3.response.HTTPResponse.read

    def counted(self: urllib3.response.HTTPResponse, *args: Any, **kwargs: Any) -> bytes:
        reads.append(1)
        return read(self, *args, **kwargs)

    plain = requests.Session().get(bodies + path, timeout=10)
    monkeypatch.setattr(urllib3.response.HTTPResponse, "read", counted)
    session = session_for(bodies)
    assert all(type(a) is WholeBodyAdapter for a in session.adapters.values())
    response = session.get(bodies + path, timeout=10)
    assert response.content == plain.content == _Bodies.BODY
    assert response.status_code == plain.status_code == 200
    assert response.headers.get("Content-Encoding") == plain.headers.get("Content-Encoding")
    assert len(reads) <= 8, len(reads)  # 64 at least in 10 KiB chunks


def test_a_body_cut_short_fails_as_it_does_with_requests(bodies: str) -> None:
    with pytest.raises(requests.RequestException) as plain:
        requests.Session().get(bodies + "/cut", timeout=10)
    with pytest.raises(requests.RequestException) as ours:
        session_for(bodies).get(bodies + "/cut", timeout=10)
    assert type(ours.value) is type(plain.value)


def test_a_streamed_response_is_left_to_the_caller(bodies: str) -> None:
    response = session_for(bodies).get(bodies + "/length", timeout=10, stream=True)
    assert response.raw.tell() == 0  # nothing read yet
    assert b"".join(response.iter_content(10_000)) == _Bodies.BODY
