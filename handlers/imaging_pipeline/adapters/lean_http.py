"""The part of a requests session the processor's hot clients use, on urllib3 directly.

A warm event makes four requests through `PerThreadSession` (FHIR search and transaction,
the analyzer, the SR's STOW-RS). requests spends about 0.4 ms of CPU a call above urllib3
(preparing the request, hooks, cookies, redirect bookkeeping, its adapter), none of which
these calls need. `LeanSession` sends the same request (method, URL with the query, headers,
JSON or bytes body, a connect and a read timeout) through a urllib3 pool, or google-auth's
`AuthorizedHttp` for Google APIs, and answers with what callers read: `status_code`,
`headers`, `content`, `json()`.

Where requests' environment would change the request, the request is left to requests: a proxy
for the URL, a netrc login for its host (`lean_session_for` returns None). The CA bundle is
requests' own (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's). urllib3's errors are
raised as requests' own classes, so retry policies (`http.request_with_retries`) treat a
refused connection or a timeout the same on either session. Redirects are not followed: none
of these APIs redirects, and a 3xx is returned as it is.
"""

from __future__ import annotations

import json as jsonlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
from requests.utils import default_user_agent, get_environ_proxies, get_netrc_auth, select_proxy

# What requests sends by default, so a server sees the same request from either session.
_DEFAULT_HEADERS = {
    "User-Agent": default_user_agent(),
    "Accept-Encoding": ", ".join(("gzip", "deflate")),
    "Accept": "*/*",
    "Connection": "keep-alive",
}


class LeanResponse:
    """The fields of `requests.Response` the REST adapters read."""

    __slots__ = ("content", "headers", "status_code", "url")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, url: str):
        self.status_code, self.headers, self.content, self.url = status_code, headers, content, url

    def json(self) -> Any:
        """The body as JSON; ValueError (as requests) when it is not."""
        return jsonlib.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class LeanSession:
    """`request(method, url, *, timeout, params, json, data, headers)` as `requests.Session`."""

    def __init__(self, http: Any) -> None:
        self._http = http  # urllib3.PoolManager or google-auth's AuthorizedHttp (same urlopen)

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
        body = data
        if json is not None and data is None:
            body = jsonlib.dumps(json, allow_nan=False).encode()  # requests' own encoding
            sent["Content-Type"] = "application/json"
        elif body is not None and not isinstance(body, bytes | str) and hasattr(body, "__len__"):
            sent["Content-Length"] = str(len(body))  # an iterable of known length, as requests
        if headers:
            sent.update(headers)
        try:
            response = self._http.urlopen(
                method,
                url,
                body=body,
                headers=sent,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=False,
                redirect=False,
                preload_content=True,
                decode_content=True,
            )
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise requests.ConnectTimeout(exc) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc) from exc
        except urllib3.exceptions.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        except urllib3.exceptions.HTTPError as exc:  # refused, reset, cut short, undecodable
            raise requests.ConnectionError(exc) from exc
        return LeanResponse(response.status, response.headers, response.data, url)


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
    pool_args: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
    pool_args["ca_certs" if Path(bundle).is_file() else "ca_cert_dir"] = bundle
    pool = urllib3.PoolManager(num_pools=4, maxsize=1, **pool_args)
    if credentials is None:
        return LeanSession(pool)
    from google.auth.transport.urllib3 import AuthorizedHttp

    return LeanSession(AuthorizedHttp(credentials, http=pool))
