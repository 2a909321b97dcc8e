"""STOW-RS of one Part 10 file, with the outcomes ingest needs: stored, already present, rejected.

The original bytes are sent unchanged (dicomweb-client's `store_instances` re-encodes datasets).
Storing an instance the store already has is success: Orthanc overwrites and answers 200; the
Cloud Healthcare API answers 409, after which we confirm with QIDO-RS that the instance is there.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from typing import Any

from imaging_pipeline.adapters.http import HttpResponse, HttpSession, request_with_retries
from imaging_pipeline.errors import PermanentError, classify_http_status
from imaging_pipeline.ingest.validation import CheckedInstance, ObjectRejectedError
from imaging_pipeline.telemetry import StowOutcome

FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"
DUPLICATE_SOP_INSTANCE = 0x0111  # PS3.4 Annex GG: "Duplicate SOP Instance"
SOP_INSTANCE_UID = "00080018"
QIDO_PAGE = 1000
TIMEOUT_S = 120.0  # large instances take a while to upload
# In-process attempts for timeouts, connection errors, 408, 429 and 5xx before giving up with a
# TransientError (the function is then redelivered by Eventarc; the CLI counts a failure).
ATTEMPTS = 3


class MultipartBody:
    """A one-part multipart/related body that never copies the instance bytes.

    requests sends an iterable with a known `len()` with a Content-Length; every iteration
    starts from the beginning, so a retried request sends the whole body again. Joining the
    parts instead would hold the file twice in memory (the function's memory limit matters).
    """

    CHUNK = 1024 * 1024

    def __init__(self, part10: bytes) -> None:
        self.boundary = secrets.token_hex(16)
        self._parts = (
            f"--{self.boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
            memoryview(part10),
            f"\r\n--{self.boundary}--\r\n".encode(),
        )

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="application/dicom"; boundary={self.boundary}'

    def __len__(self) -> int:
        return sum(len(part) for part in self._parts)

    def __iter__(self) -> Iterator[bytes]:
        for part in self._parts:
            for start in range(0, len(part), self.CHUNK):
                yield bytes(part[start : start + self.CHUNK])


def _failure_reasons(response: HttpResponse) -> list[int]:
    try:
        body: Any = response.json()
    except ValueError:
        return []
    items = ((body or {}).get(FAILED_SOP_SEQUENCE) or {}).get("Value") or []
    return [int(v) for item in items for v in (item.get(FAILURE_REASON) or {}).get("Value", [])]


def stow_instance(
    session: HttpSession[HttpResponse],
    dicomweb_url: str,
    instance: CheckedInstance,
    *,
    attempts: int = ATTEMPTS,
) -> StowOutcome:
    """Stores one instance; raises ObjectRejectedError or TransientError (retry later)."""
    body = MultipartBody(instance.part10)
    response = request_with_retries(
        session,
        "POST",
        f"{dicomweb_url.rstrip('/')}/studies",
        dependency="dicom-store",
        max_attempts=attempts,
        timeout_s=TIMEOUT_S,
        data=body,
        headers={"Content-Type": body.content_type, "Accept": "application/dicom+json"},
    )
    reasons = _failure_reasons(response)
    if response.status_code in (200, 202) and not reasons:
        return "stored"  # 202 means stored with warnings (e.g. coerced attributes)
    if reasons and all(r == DUPLICATE_SOP_INSTANCE for r in reasons):
        return "already_present"
    if response.status_code == 409 and instance_exists(session, dicomweb_url, instance):
        return "already_present"
    error = classify_http_status("dicom-store", response.status_code)
    if isinstance(error, PermanentError) or response.status_code < 300:
        detail = f"HTTP {response.status_code}" + (
            f", failure reasons {', '.join(hex(r) for r in reasons)}" if reasons else ""
        )
        raise ObjectRejectedError("rejected_by_store", detail)
    raise error


def qido_all(
    session: HttpSession[HttpResponse], url: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    """All pages of one QIDO-RS query (limit/offset paging)."""
    results: list[dict[str, Any]] = []
    while True:
        page_params = {**params, "limit": str(QIDO_PAGE), "offset": str(len(results))}
        response = request_with_retries(
            session,
            "GET",
            url,
            dependency="dicom-store",
            max_attempts=ATTEMPTS,
            timeout_s=TIMEOUT_S,
            params=page_params,
            headers={"Accept": "application/dicom+json"},
        )
        if response.status_code in (204, 404):  # no match; some servers 404 unknown studies
            return results
        if response.status_code != 200:
            raise classify_http_status("dicom-store", response.status_code)
        page = response.json() or []
        results.extend(page)
        if len(page) < QIDO_PAGE:
            return results


def series_instance_uids(
    session: HttpSession[HttpResponse], dicomweb_url: str, study_uid: str, series_uid: str
) -> set[str]:
    """SOP Instance UIDs the store has in one series (one QIDO-RS query, paged)."""
    url = f"{dicomweb_url.rstrip('/')}/studies/{study_uid}/series/{series_uid}/instances"
    found = qido_all(session, url, {"includefield": SOP_INSTANCE_UID})
    return set(_values(found, SOP_INSTANCE_UID))


def instance_exists(
    session: HttpSession[HttpResponse], dicomweb_url: str, instance: CheckedInstance
) -> bool:
    if not (instance.study_uid and instance.series_uid):
        return False
    uids = series_instance_uids(session, dicomweb_url, instance.study_uid, instance.series_uid)
    return instance.sop_instance_uid in uids


def _values(results: Iterable[dict[str, Any]], tag: str) -> Iterable[str]:
    for item in results:
        values = (item.get(tag) or {}).get("Value") or []
        if values:
            yield str(values[0])
