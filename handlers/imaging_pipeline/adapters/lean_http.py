"""The part of a requests session the processor's hot clients use, on http.client directly.

A warm event makes five requests through `PerThreadSession` (WADO-RS, the analyzer, STOW-RS,
FHIR search and transaction). requests spends about 0.4 ms of CPU a call above urllib3, and
urllib3 about 0.3 ms above http.client (URL parsing and normalising, pool bookkeeping, its
response wrapper; the five calls of an event went from 4.4 to 2.9 ms, `bench.cpu_breakdown`),
none of which these calls need. `LeanSession` sends the same request
(method, URL with the query, headers, JSON or bytes body, a timeout) on one kept-alive
`http.client` connection per origin, and answers with what callers read: `status_code`,
`headers`, `content`, `json()`. With Google credentials it authorizes as google-auth's
transports do: a token before each request, a refresh and one more try on 401.

Where requests' environment would change the request, the request is left to requests: a proxy
for the URL, a netrc login for its host (`lean_session_for` returns None). TLS verifies the
host against requests' own CA bundle (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's).
Failures are raised as requests' own classes, so retry policies (`http.request_with_retries`)
treat a refused connection or a timeout the same on either session. Redirects are not
followed: none of these APIs redirects, and a 3xx is returned as it is.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json as jsonlib
import os
import select
import socket
import ssl
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.utils import default_user_agent, get_environ_proxies, get_netrc_auth, select_proxy

# What requests sends by default, so a server sees the same request from either session.
_DEFAULT_HEADERS = {
    "User-Agent": default_user_agent(),
    "Accept-Encoding": ", ".join(("gzip", "deflate")),
    "Accept": "*/*",
    "Connection": "keep-alive",
}
# google-auth's transports refresh on these and try again, at most twice.
_REFRESH_STATUS = 401
_MAX_REFRESHES = 2


class LeanResponse:
    """The fields of `requests.Response` the REST adapters read (`headers.get` ignores case)."""

    __slots__ = ("content", "headers", "status_code", "url")

    def __init__(self, status_code: int, headers: Any, content: bytes, url: str):
        self.status_code, self.headers, self.content, self.url = status_code, headers, content, url

    def json(self) -> Any:
        """The body as JSON; ValueError (as requests) when it is not."""
        return jsonlib.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class _NoDelay:
    """Sends small writes at once (as urllib3 does): a request's head and body are separate
    writes, which Nagle's algorithm would hold until the server's delayed ACK."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        assert self.sock is not None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPConnection(_NoDelay, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_NoDelay, http.client.HTTPSConnection):
    pass


class LeanSession:
    """`request(method, url, *, timeout, params, json, data, headers)` as `requests.Session`.

    One connection per origin, kept alive between requests; a session serves one thread (see
    `PerThreadSession`)."""

    def __init__(self, ca_bundle: str, credentials: Any = None) -> None:
        self.ca_bundle = ca_bundle
        self._credentials = credentials  # google-auth credentials, or None
        self._refresh_transport: Any = None
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> LeanResponse:
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        sent = dict(_DEFAULT_HEADERS)
        body = data.encode() if isinstance(data, str) else data  # requests sends str as UTF-8
        if json is not None and data is None:
            body = jsonlib.dumps(json, allow_nan=False).encode()  # requests' own encoding
            sent["Content-Type"] = "application/json"
        elif body is not None and not isinstance(body, bytes) and hasattr(body, "__len__"):
            sent["Content-Length"] = str(len(body))  # an iterable of known length, as requests
        if headers:
            sent.update(headers)
        if self._credentials is None:
            return self._send(method, url, body, sent, timeout)
        for refreshes in range(_MAX_REFRESHES + 1):
            authorized = dict(sent)
            self._credentials.before_request(self._transport(), method, url, authorized)
            response = self._send(method, url, body, authorized, timeout)
            if response.status_code != _REFRESH_STATUS or refreshes == _MAX_REFRESHES:
                break
            self._credentials.refresh(self._transport())
        return response

    def _transport(self) -> Any:
        """google-auth's transport for token requests (rare: once an hour, or after a 401)."""
        if self._refresh_transport is None:
            from google.auth.transport.requests import Request

            self._refresh_transport = Request()
        return self._refresh_transport

    def _send(
        self, method: str, url: str, body: Any, headers: dict[str, str], timeout: float | None
    ) -> LeanResponse:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        origin = (parts.scheme, parts.hostname or "", parts.port or _PORTS.get(parts.scheme, 0))
        connection = self._connection(origin, timeout)
        with self._failures(origin, requests.ReadTimeout):
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            content = _decoded(response.read(), response.getheader("Content-Encoding"))
        return LeanResponse(response.status, response.msg, content, url)

    def _connection(
        self, origin: tuple[str, str, int], timeout: float | None
    ) -> http.client.HTTPConnection:
        """This origin's connection, connected: a kept-alive one the server has not closed
        meanwhile (urllib3's check), else a new one."""
        connection = self._connections.get(origin)
        if connection is not None and connection.sock is not None and _dropped(connection.sock):
            connection.close()
        if connection is None:
            scheme, host, port = origin
            if scheme == "https":
                connection = _HTTPSConnection(host, port, context=_tls_context(self.ca_bundle))
            elif scheme == "http":
                connection = _HTTPConnection(host, port)
            else:
                raise requests.exceptions.InvalidSchema(f"no connection for {scheme!r} URLs")
            self._connections[origin] = connection
        if connection.timeout != timeout:
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
        if connection.sock is None:
            with self._failures(origin, requests.ConnectTimeout):
                connection.connect()
        return connection

    @contextlib.contextmanager
    def _failures(self, origin: tuple[str, str, int], timeout: type[Exception]) -> Iterator[None]:
        """Failures as requests' classes (`timeout` for a timeout), the connection dropped."""
        try:
            yield
        except TimeoutError as exc:
            self._drop(origin)
            raise timeout(exc) from exc
        except ssl.SSLError as exc:
            self._drop(origin)
            raise requests.exceptions.SSLError(exc) from exc
        except (OSError, http.client.HTTPException, zlib.error) as exc:  # refused, reset, cut short
            self._drop(origin)
            raise requests.ConnectionError(exc) from exc

    def _drop(self, origin: tuple[str, str, int]) -> None:
        connection = self._connections.pop(origin, None)
        if connection is not None:
            connection.close()


_PORTS = {"http": 80, "https": 443}


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive socket that is readable was closed by the server (or sent junk)."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _decoded(content: bytes, encoding: str | None) -> bytes:
    """The body without its Content-Encoding (gzip, deflate; others are left as sent, as
    urllib3 does); zlib.error when it does not inflate."""
    for coding in reversed([c.strip().lower() for c in (encoding or "").split(",")]):
        if coding in ("gzip", "x-gzip"):
            content = _gunzip(content)
        elif coding == "deflate":
            try:
                content = zlib.decompress(content)
            except zlib.error:  # raw deflate, as some servers send it
                content = zlib.decompress(content, -zlib.MAX_WBITS)
    return content


def _gunzip(data: bytes) -> bytes:
    """Every member of a gzip body (a body may hold several, one after the other)."""
    members = []
    while data:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        members.append(member.decompress(data))
        if not member.eof:
            raise zlib.error("gzip body cut short")
        data = member.unused_data
    return b"".join(members)


@functools.cache
def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    """One context per CA bundle, shared by every session (loading a bundle costs ms)."""
    if Path(ca_bundle).is_file():
        return ssl.create_default_context(cafile=ca_bundle)
    return ssl.create_default_context(capath=ca_bundle)


def lean_session_for(url: str, credentials: Any = None) -> LeanSession | None:
    """A lean session for `url`, authorized with google-auth `credentials` when given; None when
    requests' environment (a proxy, a netrc login) applies to the URL."""
    # get_environ_proxies also lists NO_PROXY ("no"); select_proxy picks as requests would.
    if select_proxy(url, get_environ_proxies(url)) or get_netrc_auth(url):
        return None
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle is None:
        import certifi

        bundle = certifi.where()
    return LeanSession(bundle, credentials)
