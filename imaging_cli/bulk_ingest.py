"""Bulk upload of DICOM files to a store: bounded concurrency, resumable, one result per file.

The per-file steps reuse the ingest function's code (`check_dicom`, `stow_instance`), so the CLI
and the staging-bucket function accept and reject exactly the same files. Resuming works by
asking the store (QIDO-RS, once per series, cached) which SOP Instance UIDs it already has.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

import requests
from imaging_pipeline.adapters.dicomweb_stow import series_instance_uids, stow_instance
from imaging_pipeline.errors import PipelineError, TransientError
from imaging_pipeline.ingest.validation import ObjectRejectedError, check_dicom

from imaging_cli.ingest_sources import SourceObject

FileOutcome = Literal[
    "stored", "already_present", "skipped_existing", "not_dicom", "failed", "not_attempted"
]
# Retries inside one run before a file counts as failed (the next run resumes from there).
CLI_ATTEMPTS = 5
# Files in a row that fail because the store cannot be reached (connection refused, timeouts,
# 5xx after every retry) before the run stops instead of trying every remaining file.
UNREACHABLE_AFTER = 3


@dataclass(frozen=True)
class FileResult:
    uri: str
    outcome: FileOutcome
    detail: str = ""
    sop_instance_uid: str = ""


@dataclass
class IngestSummary:
    results: list[FileResult] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.outcome for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.outcome == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed


class ExistingInstances:
    """Which SOP Instance UIDs the store has, one QIDO-RS query per series, thread-safe."""

    def __init__(self, session: requests.Session, dicomweb_url: str) -> None:
        self._session = session
        self._url = dicomweb_url
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], set[str]] = {}
        self._series_locks: dict[tuple[str, str], threading.Lock] = {}

    def contains(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> bool:
        if not (study_uid and series_uid and sop_instance_uid):
            return False
        key = (study_uid, series_uid)
        with self._lock:
            series_lock = self._series_locks.setdefault(key, threading.Lock())
        with series_lock:  # concurrent files of one series share a single query
            if key not in self._series:
                self._series[key] = series_instance_uids(self._session, self._url, *key)
            return sop_instance_uid in self._series[key]


class BulkIngest:
    def __init__(
        self,
        session: requests.Session,
        dicomweb_url: str,
        *,
        resume: bool = True,
        unreachable_after: int = UNREACHABLE_AFTER,
    ) -> None:
        self.session = session
        self.dicomweb_url = dicomweb_url
        self.existing = ExistingInstances(session, dicomweb_url) if resume else None
        self.unreachable_after = unreachable_after
        # Why the run stopped early (the store's last error), or None.
        self.stopped: str | None = None
        self._unreachable_in_a_row = 0
        self._lock = threading.Lock()

    def _note(self, result: FileResult, store_unavailable: bool) -> FileResult:
        """Counts failures in a row caused by the store itself; any success resets it."""
        with self._lock:
            if store_unavailable:
                self._unreachable_in_a_row += 1
                if self._unreachable_in_a_row >= self.unreachable_after and not self.stopped:
                    self.stopped = result.detail
            elif result.outcome != "not_dicom":
                self._unreachable_in_a_row = 0
        return result

    def ingest_one(self, source: SourceObject) -> FileResult:
        if self.stopped:
            return FileResult(source.uri, "not_attempted", "stopped: the store is unreachable")
        try:
            result = self._ingest(source)
        except TransientError as error:
            return self._note(FileResult(source.uri, "failed", str(error)), True)
        return self._note(result, False)

    def _ingest(self, source: SourceObject) -> FileResult:
        try:
            payload = source.read()
        except Exception as exc:  # any source error fails this file, not the run
            return FileResult(source.uri, "failed", f"read failed: {type(exc).__name__}: {exc}")
        try:
            instance = check_dicom(payload)
            uids = (instance.study_uid, instance.series_uid, instance.sop_instance_uid)
            if self.existing is not None and self.existing.contains(*uids):
                return FileResult(
                    source.uri, "skipped_existing", sop_instance_uid=instance.sop_instance_uid
                )
            outcome = stow_instance(
                self.session, self.dicomweb_url, instance, attempts=CLI_ATTEMPTS
            )
        except ObjectRejectedError as rejected:
            kind: FileOutcome = "not_dicom" if rejected.reason == "not_dicom" else "failed"
            return FileResult(source.uri, kind, f"{rejected.reason}: {rejected.detail}")
        except TransientError:
            raise  # the store itself is failing: counted by ingest_one
        except (PipelineError, requests.RequestException) as error:
            return FileResult(source.uri, "failed", str(error))
        return FileResult(source.uri, outcome, sop_instance_uid=instance.sop_instance_uid)

    def run(
        self,
        sources: Iterable[SourceObject],
        *,
        workers: int,
        on_result: Callable[[FileResult], None] = lambda _: None,
    ) -> IngestSummary:
        """At most `workers` uploads in flight and `2 * workers` files read ahead. Stops
        submitting files once the store is unreachable; on Ctrl-C, files not yet started are
        cancelled (uploads in flight finish) and KeyboardInterrupt propagates."""
        summary = IngestSummary()
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        try:
            for result in _bounded_map(
                pool, self.ingest_one, sources, limit=2 * workers, stop=lambda: bool(self.stopped)
            ):
                summary.results.append(result)
                on_result(result)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return summary


def _bounded_map(
    pool: ThreadPoolExecutor,
    fn: Callable[[SourceObject], FileResult],
    items: Iterable[SourceObject],
    limit: int,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[FileResult]:
    pending: set[Future[FileResult]] = set()
    for item in items:
        if stop():
            break
        if len(pending) >= limit:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
        pending.add(pool.submit(fn, item))
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield future.result()
