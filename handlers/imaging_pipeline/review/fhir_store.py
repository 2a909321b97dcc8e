"""The review app's FHIR adapter: searches, reads and versioned writes over the R4 REST API.

Unlike the processor's client, a 412 (version conflict) is an answer here, not a retry: two
reviewers raced, and the second one must be told (`VersionConflictError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from imaging_pipeline.adapters.fhir_client import FHIR_JSON
from imaging_pipeline.adapters.http import raise_for_status, request_with_retries, session_for
from imaging_pipeline.errors import TransientError

if TYPE_CHECKING:
    import requests

Params = Sequence[tuple[str, str]]


class VersionConflictError(Exception):
    """The resource changed since the version the reviewer saw (HTTP 412)."""


class NotFoundError(Exception):
    pass


class ReviewFhir:
    def __init__(self, base_url: str, *, timeout_s: float = 20.0, max_attempts: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._session: requests.Session | None = None
        # Worklist queries run side by side (counts and pages are independent reads).
        self._pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="fhir")

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = session_for(self.base_url)
        return self._session

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/fhir+json", **kwargs.pop("headers", {})}
        if "json" in kwargs:
            headers["Content-Type"] = FHIR_JSON
        return request_with_retries(
            self.session,
            method,
            f"{self.base_url}/{path}" if path else self.base_url,
            dependency="fhir",
            max_attempts=self.max_attempts,
            timeout_s=self.timeout_s,
            headers=headers,
            **kwargs,
        )

    def search(self, resource_type: str, params: Params) -> dict[str, Any]:
        response = self._send("GET", resource_type, params=list(params))
        raise_for_status(response, "fhir")
        return dict(response.json())

    def search_many(self, queries: Sequence[tuple[str, Params]]) -> list[dict[str, Any]]:
        """Several searches at once, results in the order asked."""
        return list(self._pool.map(lambda q: self.search(*q), queries))

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        response = self._send("GET", f"{resource_type}/{resource_id}")
        if response.status_code in (404, 410):
            raise NotFoundError(f"{resource_type}/{resource_id}")
        raise_for_status(response, "fhir")
        return dict(response.json())

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a transaction; a 412 (or an entry answering 412) is a `VersionConflictError`."""
        response = self._send("POST", "", json=dict(bundle))
        if response.status_code == 412:
            raise VersionConflictError()
        raise_for_status(response, "fhir")
        body = dict(response.json())
        for entry in body.get("entry", []):
            status = str(entry.get("response", {}).get("status", "200")).split()[0]
            if status == "412":
                raise VersionConflictError()
            if status.isdigit() and int(status) >= 400:
                raise TransientError("fhir", f"entry HTTP {status}")
        return body


def resources(bundle: Mapping[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("resource", {}).get("resourceType") == resource_type
    ]
