"""Server-side bulk import: the DICOM store copies objects from Cloud Storage itself.

`POST {api}/projects/P/locations/L/datasets/D/dicomStores/S:import` with
`{"gcsSource": {"uri": "gs://bucket/prefix/**"}}` starts a long-running operation; polling
`GET {api}/{operation name}` returns `metadata.counter` (success, failure, pending) while it
runs and, once `done`, either `response` or `error` (`code`, `message`). Per-object errors are
written to Cloud Logging; the operation's `metadata.logsUrl` links to them. Nothing passes
through this machine, so an archive of any size imports at the store's speed; the store's
notification config (`send_for_bulk_import`) sends every imported instance to the processor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

HEALTHCARE_API = "https://healthcare.googleapis.com/v1"


class BulkImportError(Exception):
    """The import could not be started or its operation could not be followed."""


@dataclass
class ImportProgress:
    success: int = 0
    failure: int = 0
    pending: int = 0

    @property
    def done(self) -> int:
        return self.success + self.failure

    @classmethod
    def of(cls, operation: dict[str, Any]) -> ImportProgress:
        counter = (operation.get("metadata") or {}).get("counter") or {}
        return cls(*(int(counter.get(k, 0)) for k in ("success", "failure", "pending")))


@dataclass
class ImportResult:
    operation: str
    progress: ImportProgress
    error: dict[str, Any] | None = None
    logs_url: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.progress.failure == 0


def gcs_import_uri(spec: str) -> str:
    """`gs://b/prefix/` (a folder) -> `gs://b/prefix/**` (every object below it, recursively);
    a URI with a wildcard, or naming one object, is used as it is."""
    if not spec.startswith("gs://") or len(spec) <= len("gs://"):
        raise BulkImportError(f"not a gs:// URI: {spec!r}")
    if any(c in spec for c in "*?"):
        return spec
    if spec.count("/") == 2:  # gs://bucket
        return spec + "/**"
    return spec + "**" if spec.endswith("/") else spec


def _fail(response: requests.Response, what: str) -> BulkImportError:
    try:
        message = response.json().get("error", {}).get("message", "")
    except ValueError:
        message = ""
    hint = {
        403: " (the caller needs healthcare.dicomStores.import on the store; the store's "
        "service agent needs storage.objects.get/list on the bucket)",
        404: " (no such DICOM store)",
    }.get(response.status_code, "")
    return BulkImportError(f"{what}: HTTP {response.status_code} {message}".rstrip() + hint)


def start_import(
    session: requests.Session, store_path: str, gcs_uri: str, *, api: str = HEALTHCARE_API
) -> str:
    """Starts the import; returns the operation's name."""
    try:
        response = session.post(
            f"{api.rstrip('/')}/{store_path}:import",
            json={"gcsSource": {"uri": gcs_uri}},
            timeout=60,
        )
    except requests.RequestException as error:
        raise BulkImportError(f"cannot reach {api} ({type(error).__name__})") from None
    if response.status_code != 200:
        raise _fail(response, "import refused")
    name = str((response.json() or {}).get("name", ""))
    if not name:
        raise BulkImportError("import started but the answer names no operation")
    return name


def wait_for_import(
    session: requests.Session,
    operation: str,
    *,
    api: str = HEALTHCARE_API,
    interval_s: float = 10.0,
    on_progress: Callable[[ImportProgress], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    poll_attempts: int = 5,
) -> ImportResult:
    """Polls the operation until done; transient polling failures are retried."""
    url = f"{api.rstrip('/')}/{operation}"
    failures = 0
    while True:
        response: requests.Response | None
        try:
            response = session.get(url, timeout=60)
        except requests.RequestException as error:
            response, last = None, type(error).__name__
        else:
            last = f"HTTP {response.status_code}"
        if response is None or response.status_code == 429 or response.status_code >= 500:
            failures += 1
            if failures >= poll_attempts:
                raise BulkImportError(f"cannot follow operation {operation}: {last}")
            sleep(interval_s)
            continue
        if response.status_code != 200:
            raise _fail(response, f"cannot follow operation {operation}")
        failures = 0
        body: dict[str, Any] = response.json() or {}
        progress = ImportProgress.of(body)
        on_progress(progress)
        if body.get("done"):
            return ImportResult(
                operation=operation,
                progress=progress,
                error=body.get("error"),
                logs_url=str((body.get("metadata") or {}).get("logsUrl", "")),
                raw=body,
            )
        sleep(interval_s)


def progress_text(progress: ImportProgress) -> str:
    total = progress.done + progress.pending
    share = f" ({progress.done * 100 // total}%)" if total else ""
    return (
        f"import: {progress.done}/{total or '?'} objects{share}; imported {progress.success}, "
        f"failed {progress.failure}, pending {progress.pending}"
    )
