"""A small HTTP reverse proxy that injects transient failures in front of any local server.

Test infrastructure, not a double of a Google service: put it between code under test and
Orthanc, the FHIR server, the Vision double... and make the next requests fail
(`fail_next(n, status=503, retry_after=2)`), drop the connection (`status=None`) or stall
(`delay_next(n, seconds)`), to prove
that retries and error classification work against real protocol traffic. Everything else is
forwarded faithfully: method, path, query, headers (the client's Host too, so URLs a server
builds from it point back at the proxy), body, and the response streamed as it arrives
(multipart DICOMweb responses included).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from imaging_dev.servers._base import LOOPBACK
from imaging_dev.servers._http import ThreadedHttpServer

# RFC 9110 7.6.1: meaningful for one connection only, never forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
_CHUNK = 64 * 1024
_REASONS = {
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy saw: `status` is what the client got (None: connection dropped).

    `duration` runs until the answer started (upstream headers), not until its body was relayed.
    """

    method: str
    path: str  # path and query, as sent by the client
    status: int | None
    injected: bool
    request_bytes: int
    duration: float


@dataclass(frozen=True)
class _Failure:
    status: int | None
    retry_after: int | None


class FaultProxy(ThreadedHttpServer):
    """`with FaultProxy(orthanc.url) as p: DICOMwebClient(url=p.url + "/dicom-web")`."""

    name = "fault-proxy"

    def __init__(self, target_url: str, *, timeout: float = 60.0) -> None:
        super().__init__()
        target = urlsplit(target_url)
        if target.scheme != "http" or not target.hostname:
            raise ValueError(f"FaultProxy needs an http:// target URL, got {target_url!r}")
        self.target_url = target_url.rstrip("/")
        self._target_host = target.hostname
        self._target_port = target.port or 80
        self._prefix = target.path.rstrip("/")
        self.timeout = timeout
        self.handler_class = _ProxyHandler
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._delays: list[float] = []
        self._log: list[ProxiedRequest] = []

    @property
    def url(self) -> str:
        """The proxy's equivalent of `target_url` (same path prefix, proxy's host and port)."""
        return f"http://{LOOPBACK}:{self.port}{self._prefix}"

    def fail_next(
        self, n: int = 1, status: int | None = 503, retry_after: int | None = None
    ) -> None:
        """The next `n` requests get `status` without reaching the target.

        `status=None` closes the connection without any response, like a crashed backend.
        """
        with self._lock:
            self._failures.extend(_Failure(status, retry_after) for _ in range(n))

    def delay_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """The next `n` requests reach the target only after `seconds` (to trip client timeouts).

        Delays and failures are separate queues: a request can take one of each.
        """
        with self._lock:
            self._delays.extend([seconds] * n)

    @property
    def requests(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._log)

    def reset(self) -> None:
        """Forgets pending failures and the request log."""
        with self._lock:
            self._failures.clear()
            self._delays.clear()
            self._log.clear()

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _next_delay(self) -> float:
        with self._lock:
            return self._delays.pop(0) if self._delays else 0.0

    def _record(self, entry: ProxiedRequest) -> None:
        with self._lock:
            self._log.append(entry)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FaultProxy/1"

    def _proxy(self) -> None:
        owner: FaultProxy = self.server.owner  # type: ignore[attr-defined]
        started = time.monotonic()
        body = self._read_body()
        delay = owner._next_delay()
        if delay:
            time.sleep(delay)
        failure = owner._next_failure()

        # Each request is logged before the client gets its answer, so a client that reads
        # `.requests` after a response (or an error) always finds that request there.
        def record(status: int | None, injected: bool) -> None:
            owner._record(
                ProxiedRequest(
                    self.command, self.path, status, injected, len(body), time.monotonic() - started
                )
            )

        if failure is None:
            self._forward(owner, body, record)
        elif failure.status is None:
            record(None, True)
            self.close_connection = True
            self.connection.shutdown(2)  # SHUT_RDWR: the client sees a dropped connection
        else:
            record(failure.status, True)
            self._send_failure(failure.status, failure.retry_after)

    # BaseHTTPRequestHandler dispatches on these names; every method is proxied the same way.
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _proxy  # noqa: N815

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers are hop-by-hop; drop them
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(
        self, owner: FaultProxy, body: bytes, record: Callable[[int | None, bool], None]
    ) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(
            owner._target_host, owner._target_port, timeout=owner.timeout
        )
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
        except OSError as err:
            upstream.close()
            record(502, False)
            self._send_json(
                502,
                {
                    "error": {
                        "code": 502,
                        "status": "BAD_GATEWAY",
                        "message": f"fault proxy: upstream error: {err}",
                    }
                },
            )
            return
        record(response.status, False)
        try:
            self._relay(response)
        finally:
            upstream.close()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP and key.lower() not in ("date", "server"):
                self.send_header(key, value)
        self.send_header("Date", self.date_time_string())
        chunked = length is None and not no_body
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            return
        while chunk := response.read1(_CHUNK):
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _send_failure(self, status: int, retry_after: int | None) -> None:
        reason = _REASONS.get(status, "INJECTED")
        payload = {
            "error": {"code": status, "status": reason, "message": "fault proxy: injected failure"}
        }
        self._send_json(status, payload, {"Retry-After": str(retry_after)} if retry_after else {})

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is `FaultProxy.requests`
