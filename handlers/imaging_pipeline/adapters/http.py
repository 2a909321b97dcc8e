"""HTTP sessions and a retry policy shared by the REST adapters (Vision, Vertex AI, FHIR,
STOW-RS).

In Google Cloud a request goes through google-auth with the function's default credentials;
against a local server (tests, demo) without. The processor's per-event calls use a
`LeanSession` on http.client (`hot_session_for`); the rest use requests (`session_for`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from imaging_pipeline.errors import RETRYABLE_STATUS, TransientError, classify_http_status

if TYPE_CHECKING:
    import requests


class HttpResponse(Protocol):
    """What the REST adapters read of a response (`requests.Response`, `LeanResponse`)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    def json(self) -> Any: ...


_Response = TypeVar("_Response", bound=HttpResponse, covariant=True)
_R = TypeVar("_R", bound=HttpResponse)


class HttpSession(Protocol[_Response]):
    """What the REST adapters call on a session (`requests.Session`, `LeanSession`)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: Any = ...,
        params: Any = ...,
        json: Any = ...,
        data: Any = ...,
        headers: Any = ...,
    ) -> _Response: ...


CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
MAX_BACKOFF_S = 8.0


# Google APIs, and the DNS names of Vertex AI dedicated endpoints.
_GOOGLE_DOMAINS = ("googleapis.com", "vertexai.goog")


def uses_google_auth(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return any(host == d or host.endswith(f".{d}") for d in _GOOGLE_DOMAINS)


def session_for(url: str, scopes: tuple[str, ...] = (CLOUD_PLATFORM_SCOPE,)) -> requests.Session:
    """An authorized session for Google APIs, a plain one for any other (local) server."""
    if uses_google_auth(url):
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=list(scopes))
        return environment_read_once(AuthorizedSession(credentials), url)
    import requests

    return environment_read_once(requests.Session(), url)


def environment_read_once(session: requests.Session, url: str) -> requests.Session:
    """Read the proxy and CA-bundle variables for `url` now, not on every request.

    With `trust_env` (the default), requests walks the whole environment for proxies and reads
    ~/.netrc before every request: about a tenth of a warm event's CPU in bench/e2e. Sessions
    here live as long as the process and talk to one host, so reading once gives the same
    answer. (google-auth's token refresh uses its own session and is not affected.)
    """
    import os

    from requests.utils import get_environ_proxies, get_netrc_auth

    session.proxies.update(get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    if session.auth is None:
        session.auth = get_netrc_auth(url)
    session.trust_env = False
    _read_bodies_whole(session)
    return session


def _read_bodies_whole(session: requests.Session) -> None:
    """Mount `WholeBodyAdapter` where the session has requests' plain adapter (a custom one,
    such as google-auth's mutual-TLS adapter, is kept)."""
    from requests.adapters import HTTPAdapter

    from imaging_pipeline.adapters.whole_body import WholeBodyAdapter

    for prefix, adapter in list(session.adapters.items()):
        if type(adapter) is HTTPAdapter:
            session.mount(prefix, WholeBodyAdapter.like(adapter))


def hot_session_for(
    url: str, scopes: tuple[str, ...] = (CLOUD_PLATFORM_SCOPE,)
) -> HttpSession[HttpResponse]:
    """A `LeanSession` (http.client, about 0.7 ms less CPU a request) for the processor's
    per-event calls, or requests' session where its environment applies (see `lean_http`)."""
    from imaging_pipeline.adapters.lean_http import lean_session_for

    credentials = None
    if uses_google_auth(url):
        import google.auth

        credentials, _ = google.auth.default(scopes=list(scopes))
    return lean_session_for(url, credentials) or session_for(url, scopes)


class PerThreadSession:
    """One session per thread: `requests.Session` (and google-auth's token refresh on it) is
    not documented as thread-safe, and an instance serves concurrent requests on threads."""

    def __init__(self, url: str, scopes: tuple[str, ...] = (CLOUD_PLATFORM_SCOPE,)) -> None:
        self.url, self.scopes = url, scopes
        self._local = threading.local()

    def get(self) -> HttpSession[HttpResponse]:
        session: HttpSession[HttpResponse] | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = hot_session_for(self.url, self.scopes)
        return session


def backoff_seconds(attempt: int, retry_after: str | None = None, base: float = 0.2) -> float:
    """Exponential backoff with full jitter; a numeric Retry-After (capped) takes precedence."""
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after), MAX_BACKOFF_S)
    return random.uniform(0, min(base * 2**attempt, MAX_BACKOFF_S))  # noqa: S311


def request_with_retries(
    session: HttpSession[_R],
    method: str,
    url: str,
    *,
    dependency: str,
    max_attempts: int,
    timeout_s: float,
    **kwargs: Any,
) -> _R:
    """Send a request, retrying timeouts, connection errors, 408, 429 and 5xx.

    Returns the first non-retryable response (2xx or a 4xx the caller interprets); raises
    `TransientError` when the attempts run out, so Pub/Sub redelivers the event later.
    """
    import requests

    last = ""
    for attempt in range(max_attempts):
        try:
            response = session.request(method, url, timeout=timeout_s, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = type(exc).__name__
            retry_after = None
        else:
            if response.status_code not in RETRYABLE_STATUS:
                return response
            last = f"HTTP {response.status_code}"
            retry_after = response.headers.get("Retry-After")
        if attempt + 1 < max_attempts:
            time.sleep(backoff_seconds(attempt, retry_after))
    raise TransientError(dependency, f"{last} after {max_attempts} attempts")


def raise_for_status(response: HttpResponse, dependency: str) -> None:
    """Classify a non-2xx response as permanent or transient (see `errors`)."""
    if response.status_code >= 400:
        raise classify_http_status(dependency, response.status_code)
