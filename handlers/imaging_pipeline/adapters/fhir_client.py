"""FHIR R4 REST client: search by identifier and transaction bundles, with retries.

Google's FHIR store takes the same requests as any R4 server (`POST {base}` with a transaction
Bundle, `GET {base}/Type?identifier=...`); only authentication differs (see `http.session_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imaging_pipeline.adapters.http import (
    HttpResponse,
    HttpSession,
    PerThreadSession,
    raise_for_status,
    request_with_retries,
)
from imaging_pipeline.errors import PermanentError, TransientError, classify_http_status

FHIR_JSON = "application/fhir+json; charset=utf-8"
# Conflicts from concurrent writers (409) and lost optimistic-lock races (412) resolve on retry.
_CONFLICT = frozenset({409, 412})


@dataclass(frozen=True)
class EntryOutcome:
    status: int
    location: str  # "Type/id/_history/v", "Type/id", or absolute as Google's store sends it

    @property
    def reference(self) -> str:
        """`Type/id` without the version (Google's location is an absolute URL)."""
        return "/".join(self.location.split("/_history/")[0].rstrip("/").split("/")[-2:])

    @property
    def created(self) -> bool:
        return self.status == 201


class FhirClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 4,
        session: HttpSession[HttpResponse] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._session = session
        self._sessions = PerThreadSession(self.base_url)

    @property
    def session(self) -> HttpSession[HttpResponse]:
        """The injected session, else this thread's own (requests run on several threads)."""
        return self._session if self._session is not None else self._sessions.get()

    def _send(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        response = request_with_retries(
            self.session,
            method,
            url,
            dependency="fhir",
            max_attempts=self.max_attempts,
            timeout_s=self.timeout_s,
            headers={"Accept": "application/fhir+json", "Content-Type": FHIR_JSON},
            **kwargs,
        )
        if response.status_code in _CONFLICT:
            raise TransientError("fhir", f"HTTP {response.status_code} (concurrent update)")
        raise_for_status(response, "fhir")
        return response

    def search_by_identifier(
        self, resource_type: str, system: str, value: str
    ) -> list[dict[str, Any]]:
        response = self._send(
            "GET", f"{self.base_url}/{resource_type}", params={"identifier": f"{system}|{value}"}
        )
        bundle = response.json()
        return [
            e["resource"]
            for e in bundle.get("entry", [])
            if e.get("resource", {}).get("resourceType") == resource_type
        ]

    def transaction(self, bundle: dict[str, Any]) -> list[EntryOutcome]:
        """POST a transaction; the outcome of every entry, in the order of the request."""
        response = self._send("POST", self.base_url, json=bundle)
        try:
            entries = response.json().get("entry", [])
            outcomes = [
                EntryOutcome(
                    int(str(e["response"]["status"]).split()[0]),
                    str(e["response"].get("location", "")),
                )
                for e in entries
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TransientError("fhir", "unreadable transaction response") from exc
        if len(outcomes) != len(bundle.get("entry", [])):
            raise PermanentError("rejected_by_server", "transaction response entry count differs")
        # Some servers report a failed entry inside a 200 response instead of failing the
        # whole transaction; every write here is idempotent, so a retry is safe either way.
        for entry in outcomes:
            if entry.status in _CONFLICT:
                raise TransientError("fhir", f"entry HTTP {entry.status} (concurrent update)")
            if entry.status >= 400:
                raise classify_http_status("fhir", entry.status)
        return outcomes
