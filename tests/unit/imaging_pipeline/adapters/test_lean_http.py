"""`LeanSession` sends what requests would send, reads what requests would read, fails with
requests' exception classes, and steps aside where requests' environment applies."""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from google.auth import credentials as ga_credentials
from imaging_pipeline.adapters.dicomweb_stow import MultipartBody
from imaging_pipeline.adapters.http import PerThreadSession, request_with_retries
from imaging_pipeline.adapters.lean_http import LeanSession, lean_session_for
from imaging_pipeline.errors import TransientError

from tests.support.local_http import serving


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request; answers by path."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, Any]]] = []
    BODY = bytes(range(256)) * 2500  # 640 KB
    flaky: ClassVar[list[int]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        _Recorder.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "client_port": self.client_address[1],
            }
        )
        path = self.path.split("?")[0]
        if path == "/slow":
            time.sleep(1.0)
        if path == "/flaky" and _Recorder.flaky:
            self.send_response(_Recorder.flaky.pop(0))
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/auth" and self.headers.get("Authorization") != "Bearer fresh":
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = self.BODY
        self.send_response(200)
        if path == "/json":
            payload = json.dumps({"resourceType": "Bundle", "entry": []}).encode()
            self.send_header("Content-Type", "application/fhir+json")
        if path == "/gzip":
            payload = gzip.compress(payload)
            self.send_header("Content-Encoding", "gzip")
        if path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(payload), 100_000):
                part = payload[start : start + 100_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2] if path == "/cut" else payload)
        # /close: a server that closes a kept-alive connection after answering, unannounced.
        if path in ("/cut", "/close"):
            self.close_connection = True

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(_Recorder) as url:
        yield url


@pytest.fixture(autouse=True)
def _forget_requests() -> None:
    _Recorder.seen.clear()


def _lean(url: str) -> LeanSession:
    session = lean_session_for(url)
    assert isinstance(session, LeanSession)
    return session


def _sent(session: Any, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    _Recorder.seen.clear()
    session.request(method, url, timeout=10, **kwargs)
    (request,) = _Recorder.seen
    request["headers"].pop("host")  # 127.0.0.1:port either way
    request.pop("client_port")
    return request


@pytest.mark.parametrize(
    "call",
    [
        {"method": "GET", "path": "/json", "params": {"identifier": "urn:dicom:uid|2.25.1 x&y"}},
        {"method": "GET", "path": "/json?_count=1", "params": {"identifier": "a|b"}},
        {"method": "POST", "path": "/json", "json": {"resourceType": "Bundle", "name": "Müller"}},
        {
            "method": "POST",
            "path": "/json",
            "json": {"a": 1},
            "headers": {"Content-Type": "application/fhir+json; charset=utf-8", "Accept": "x/y"},
        },
        {"method": "POST", "path": "/json", "data": b"\x00\x01raw", "headers": {"X-A": "1"}},
    ],
    ids=["params", "params-after-query", "json", "json-own-headers", "bytes"],
)
def test_the_request_on_the_wire_is_the_one_requests_sends(
    server: str, call: dict[str, Any]
) -> None:
    method, path = call.pop("method"), call.pop("path")
    plain = _sent(requests.Session(), method, server + path, **call)
    ours = _sent(_lean(server), method, server + path, **call)
    assert ours == plain


def test_an_iterable_body_of_known_length_is_sent_whole_with_a_content_length(
    server: str,
) -> None:
    """STOW-RS's MultipartBody: Content-Length, not chunked, and the same bytes as requests."""
    part10 = bytes(range(256)) * 9000  # 2.3 MB: three MultipartBody chunks
    body = MultipartBody(part10)
    headers = {"Content-Type": body.content_type}
    plain = _sent(requests.Session(), "POST", server + "/json", data=body, headers=headers)
    ours = _sent(_lean(server), "POST", server + "/json", data=body, headers=headers)
    assert ours == plain
    assert ours["headers"]["content-length"] == str(len(body))
    assert "transfer-encoding" not in ours["headers"]
    assert part10 in ours["body"]


@pytest.mark.parametrize("path", ["/length", "/chunked", "/gzip", "/json"])
def test_the_response_reads_as_requests_reads_it(server: str, path: str) -> None:
    plain = requests.Session().get(server + path, timeout=10)
    ours = _lean(server).request("GET", server + path, timeout=10)
    assert ours.status_code == plain.status_code == 200
    assert ours.content == plain.content
    for name in ("content-type", "CONTENT-ENCODING", "Content-Length"):
        assert ours.headers.get(name) == plain.headers.get(name)
    if path == "/json":
        assert ours.json() == plain.json() == {"resourceType": "Bundle", "entry": []}
    else:
        with pytest.raises(ValueError):
            ours.json()


def test_failures_raise_the_classes_the_retry_policy_retries(server: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with pytest.raises(requests.ConnectionError):
        _lean(closed).request("GET", closed + "/x", timeout=5)
    with pytest.raises(requests.ReadTimeout):
        _lean(server).request("GET", server + "/slow", timeout=0.2)
    # requests raises ChunkedEncodingError here, which its ConnectionError does not cover; a
    # body cut short is a network failure worth retrying, so the lean session says so.
    with pytest.raises(requests.ConnectionError):
        _lean(server).request("GET", server + "/cut", timeout=10)


def test_retries_on_429_and_5xx_then_succeeds(server: str) -> None:
    _Recorder.flaky[:] = [503, 429]
    response = request_with_retries(
        _lean(server), "GET", server + "/flaky", dependency="fhir", max_attempts=3, timeout_s=10
    )
    assert response.status_code == 200
    assert [r["path"] for r in _Recorder.seen] == ["/flaky"] * 3
    _Recorder.flaky[:] = [503, 503]
    with pytest.raises(TransientError, match="HTTP 503 after 2 attempts"):
        request_with_retries(
            _lean(server), "GET", server + "/flaky", dependency="fhir", max_attempts=2, timeout_s=10
        )


class _Rotating(ga_credentials.Credentials):
    """Starts with a stale token; a refresh gives the one the server accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.token = "stale"
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = "fresh"


def test_google_credentials_authorize_and_refresh_on_401(server: str) -> None:
    credentials = _Rotating()
    session = lean_session_for(server, credentials)
    assert session is not None
    response = session.request("GET", server + "/auth", timeout=10)
    assert response.status_code == 200
    assert credentials.refreshes == 1
    assert [r["headers"]["authorization"] for r in _Recorder.seen] == [
        "Bearer stale",
        "Bearer fresh",
    ]


def test_requests_environment_hands_the_url_back_to_requests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: str
) -> None:
    url = "http://fhir.example.test:8080/fhir/R4"
    assert isinstance(PerThreadSession(url).get(), LeanSession)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.test:3128")
    assert lean_session_for(url) is None
    proxied = PerThreadSession(url).get()
    assert isinstance(proxied, requests.Session)
    assert proxied.proxies == {"http": "http://proxy.example.test:3128"}
    monkeypatch.setenv("NO_PROXY", ".example.test")
    assert isinstance(lean_session_for(url), LeanSession)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine fhir.example.test login svc password s3cret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert lean_session_for(url) is None
    monkeypatch.delenv("HTTP_PROXY")
    assert isinstance(lean_session_for(server), LeanSession)  # another host: no login


def test_the_ca_bundle_is_the_one_requests_would_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import certifi

    def cafile() -> Any:
        session = lean_session_for("https://healthcare.example.test")
        assert session is not None
        return session.ca_bundle

    assert cafile() == certifi.where()
    hospital = tmp_path / "hospital-ca.pem"
    hospital.write_text(Path(certifi.where()).read_text())
    monkeypatch.setenv("CURL_CA_BUNDLE", str(hospital))
    assert cafile() == str(hospital)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # requests prefers this one
    assert cafile() == certifi.where()


def test_one_connection_is_kept_alive_and_replaced_when_the_server_closed_it(
    server: str,
) -> None:
    session = _lean(server)
    for path in ("/json", "/json", "/close"):
        assert session.request("GET", server + path, timeout=10).status_code == 200
    time.sleep(0.2)  # the server's close reaches the idle connection
    assert session.request("GET", server + "/json", timeout=10).status_code == 200
    ports = [r["client_port"] for r in _Recorder.seen]
    assert ports[0] == ports[1] == ports[2] != ports[3]


def _certificate(
    tmp_path: Path, name: str, hosts: list[str], issuer: tuple[Any, Any] | None = None
) -> tuple[Any, Any]:
    """A key and certificate for `hosts` (a CA's when `issuer` is None), written as PEM."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_key, issuer_cert = issuer or (key, None)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if hosts:
        names = [x509.IPAddress(ipaddress.ip_address(h)) for h in hosts]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key, cert


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"], ids=["its-host", "another-host"])
def test_tls_verifies_the_server_against_the_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str
) -> None:
    import ssl
    import threading

    ca = _certificate(tmp_path, "hospital-ca", [])
    _certificate(tmp_path, "server", [host], issuer=ca)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{httpd.server_port}/json"
    try:
        # certifi's bundle does not know the hospital's CA: refused, as requests refuses it.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, timeout=10)
        with pytest.raises(requests.exceptions.SSLError):
            _lean(url).request("GET", url, timeout=10)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "hospital-ca.pem"))
        if host != "127.0.0.1":  # a certificate for another host: refused by both
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(url, timeout=10)
            with pytest.raises(requests.exceptions.SSLError):
                _lean(url).request("GET", url, timeout=10)
            return
        plain = requests.get(url, timeout=10)
        ours = _lean(url).request("GET", url, timeout=10)
        assert ours.status_code == plain.status_code == 200
        assert ours.json() == plain.json() == {"resourceType": "Bundle", "entry": []}
    finally:
        httpd.shutdown()
