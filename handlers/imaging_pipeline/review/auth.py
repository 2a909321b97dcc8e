"""Who is asking: the IAP JWT of every request, verified with google-auth.

IAP signs `x-goog-iap-jwt-assertion` (ES256) with keys published at IAP_CERTS_URL; we check
the signature, expiry, issuer and the audience of this environment's backend service. Anything
else is 401, even behind IAP: a request that reaches the app another way (a misconfigured
ingress) must not be trusted. In local mode (the demo) nobody is authenticated and the pages
say so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

IAP_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
CERTS_TTL_S = 3600.0
CLOCK_SKEW_S = 30


@dataclass(frozen=True)
class Identity:
    email: str
    authenticated: bool


LOCAL_IDENTITY = Identity(email="local-user (no authentication)", authenticated=False)


class Unauthorized(Exception):  # noqa: N818  (named after the HTTP status it becomes)
    """No valid IAP assertion; the reason is for logs (never the token's content)."""


class IapVerifier:
    def __init__(self, audience: str, certs_url: str) -> None:
        self.audience = audience
        self.certs_url = certs_url
        self._certs: dict[str, str] = {}
        self._fetched = 0.0
        self._lock = threading.Lock()

    def _keys(self, kid: str | None) -> dict[str, str]:
        with self._lock:
            stale = time.monotonic() - self._fetched > CERTS_TTL_S
            if stale or (kid and kid not in self._certs):  # a rotated key: fetch again
                import requests

                response = requests.get(self.certs_url, timeout=10)
                response.raise_for_status()
                self._certs = dict(response.json())
                self._fetched = time.monotonic()
            return self._certs

    def verify(self, token: str | None) -> Identity:
        from google.auth import jwt

        if not token:
            raise Unauthorized("missing_assertion")
        try:
            header: dict[str, Any] = jwt.decode_header(token)
            claims = jwt.decode(
                token,
                certs=self._keys(header.get("kid")),
                audience=self.audience,
                clock_skew_in_seconds=CLOCK_SKEW_S,
            )
        except Exception as exc:  # bad signature, expired, wrong audience, malformed, no keys
            raise Unauthorized(type(exc).__name__) from None
        if claims.get("iss") != IAP_ISSUER:
            raise Unauthorized("wrong_issuer")
        email = str(claims.get("email") or "")
        if not email:
            raise Unauthorized("no_email_claim")
        return Identity(email=email.removeprefix("accounts.google.com:"), authenticated=True)
