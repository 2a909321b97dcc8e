"""The worklist: reports by priority (critical, urgent, routine), then by time, with filters.

FHIR cannot sort by "priority order", and a FHIR server's search cost grows with the number of
reports (the local one scans them all for every search: bench/worklist.py measures it). So the
app keeps a projection of the reports' triage facts (`WorklistIndex`: priority, modality,
review status, time, conclusion; no patient data) in memory, loaded once per instance and kept
fresh with `_lastUpdated` searches in the background plus write-through of its own reviews.
Filtering, counting, sorting and paging 10,000 rows in Python takes milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from imaging_pipeline import logs
from imaging_pipeline.fhir.mapping import (
    DCM_SYSTEM,
    PRIORITY_SYSTEM,
    REPORT_IDENTIFIER_SYSTEM,
)
from imaging_pipeline.review.fhir_store import ReviewFhir, resources

PRIORITIES = ("critical", "urgent", "routine")
ReviewStatus = Literal["unreviewed", "accepted", "rejected"]
# Review status <-> DiagnosticReport.status (see review.py for the writes).
STATUS_OF_REVIEW: dict[str, tuple[str, ...]] = {
    "unreviewed": ("preliminary",),
    "accepted": ("final",),
    "rejected": ("entered-in-error", "amended"),
}
REVIEW_OF_STATUS = {s: review for review, statuses in STATUS_OF_REVIEW.items() for s in statuses}
MODALITIES = ("CT", "MR", "CR", "DX", "US", "MG", "XA", "NM", "PT", "OT")
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorklistQuery:
    priority: str | None = None  # one of PRIORITIES, or all
    modality: str | None = None
    review: str | None = None  # one of STATUS_OF_REVIEW, or all
    page: int = 1
    page_size: int = PAGE_SIZE
    newest_first: bool = False  # default: the longest waiting first (a reading queue)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> WorklistQuery:
        """From query-string arguments; anything unknown falls back to the default."""

        def choice(name: str, allowed: Sequence[str]) -> str | None:
            value = (args.get(name) or "").strip()
            return value if value in allowed else None

        def number(name: str, default: int, upper: int) -> int:
            value = (args.get(name) or "").strip()
            return min(max(int(value), 1), upper) if value.isdigit() else default

        return cls(
            priority=choice("priority", PRIORITIES),
            modality=choice("modality", MODALITIES),
            review=choice("review", tuple(STATUS_OF_REVIEW)),
            page=number("page", 1, 100_000),
            page_size=number("size", PAGE_SIZE, MAX_PAGE_SIZE),
            newest_first=args.get("order") == "newest",
        )

    def args(self, **changes: Any) -> dict[str, str]:
        """Query-string arguments for a link to this query with `changes`."""
        query = replace(self, **changes)
        out = {
            "priority": query.priority or "",
            "modality": query.modality or "",
            "review": query.review or "",
            "order": "newest" if query.newest_first else "",
            "page": str(query.page) if query.page > 1 else "",
        }
        return {k: v for k, v in out.items() if v}

    def matches(self, row: Row) -> bool:
        return (not self.modality or row.modality == self.modality) and (
            not self.review or row.review == self.review
        )


@dataclass(frozen=True)
class Row:
    report_id: str
    priority: str
    modality: str
    review: str
    issued: str
    instance_uid: str
    conclusion: str


@dataclass
class Worklist:
    query: WorklistQuery
    counts: dict[str, int]
    rows: list[Row] = field(default_factory=list)

    @property
    def total(self) -> int:
        if self.query.priority:
            return self.counts.get(self.query.priority, 0)
        return sum(self.counts.values())

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.page_size))


def _coded(report: Mapping[str, Any], key: str, system: str) -> str:
    concepts = report.get(key) or []
    for concept in concepts:
        for coding in concept.get("coding", []):
            if coding.get("system") == system:
                return str(coding.get("code", ""))
    return ""


def row_of(report: Mapping[str, Any]) -> Row:
    identifier = next(
        (
            i.get("value", "")
            for i in report.get("identifier", [])
            if i.get("system") == REPORT_IDENTIFIER_SYSTEM
        ),
        "",
    )
    status = str(report.get("status", ""))
    return Row(
        report_id=str(report.get("id", "")),
        priority=_coded(report, "conclusionCode", PRIORITY_SYSTEM) or "routine",
        modality=_coded(report, "category", DCM_SYSTEM) or "?",
        review=REVIEW_OF_STATUS.get(status, status),
        issued=str(report.get("issued", "")),
        instance_uid=str(identifier).split("/", 1)[0],
        conclusion=str(report.get("conclusion", "")),
    )


def _version(report: Mapping[str, Any]) -> tuple[str, str]:
    meta = report.get("meta", {})
    return str(meta.get("lastUpdated", "")), str(meta.get("versionId", ""))


def in_worklist_order(rows: Iterable[Row], newest_first: bool) -> list[Row]:
    """Priority first, then time (oldest or newest first), id to make ties stable."""
    rank = {p: n for n, p in enumerate(PRIORITIES)}
    ordered = sorted(rows, key=lambda r: (r.issued, r.report_id), reverse=newest_first)
    ordered.sort(key=lambda r: rank.get(r.priority, len(PRIORITIES)))
    return ordered


def build_page(rows: Sequence[Row], query: WorklistQuery, *, ordered: bool = False) -> Worklist:
    """Pure: counts per priority under the filters, then the page in worklist order (`ordered`:
    the rows already are, as the index keeps them)."""
    counts = dict.fromkeys(PRIORITIES, 0)
    selected = []
    for row in rows if ordered else in_worklist_order(rows, query.newest_first):
        if query.matches(row):
            counts[row.priority] = counts.get(row.priority, 0) + 1
            if not query.priority or row.priority == query.priority:
                selected.append(row)
    start = (query.page - 1) * query.page_size
    return Worklist(query, counts, selected[start : start + query.page_size])


class WorklistIndex:
    """The reports' triage facts, by id, for one app instance.

    `load()` reads every report once; `refresh()` reads what changed since the newest
    `meta.lastUpdated` seen (a little overlap, so writes in the same second are not missed);
    `page()` refreshes in the background at most every `refresh_s` and never waits for it.
    A report deleted from FHIR stays until the instance restarts (the pipeline never deletes).
    """

    def __init__(self, fhir: ReviewFhir, *, refresh_s: float = 5.0, batch: int = 1000) -> None:
        self.fhir = fhir
        self.refresh_s = refresh_s
        self.batch = batch
        self._rows: dict[str, Row] = {}
        self._ordered: dict[bool, list[Row]] = {}  # by newest_first; dropped on any change
        self._watermark = ""
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    def _search_all(self, params: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """Every match, following `next` links, or `_offset` on servers that give none."""
        offset = 0
        while True:
            page_params = [*params, ("_count", str(self.batch))]
            if offset:
                page_params.append(("_offset", str(offset)))
            bundle = self.fhir.search("DiagnosticReport", page_params)
            found = resources(bundle, "DiagnosticReport")
            yield from found
            has_next = any(link.get("relation") == "next" for link in bundle.get("link", []))
            if len(found) < self.batch and not has_next:
                return
            offset += len(found)
            if not found:
                return

    def _apply(self, reports: Iterator[dict[str, Any]]) -> int:
        changed = 0
        for report in reports:
            row = row_of(report)
            updated = _version(report)[0]
            with self._lock:
                if self._rows.get(row.report_id) != row:
                    self._rows[row.report_id] = row
                    self._ordered.clear()
                if updated > self._watermark:
                    self._watermark = updated
            changed += 1
        return changed

    def load(self) -> None:
        started = time.perf_counter()
        count = self._apply(self._search_all([("_total", "none")]))
        self._loaded_at = time.monotonic()
        logs.log_event(
            logger,
            logging.INFO,
            "worklist index loaded",
            event="worklist_index_loaded",
            reports=count,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def refresh(self) -> None:
        with self._lock:
            since = self._watermark
        params = [("_total", "none"), ("_sort", "_lastUpdated")]
        if since:
            params.append(("_lastUpdated", f"ge{since}"))
        self._apply(self._search_all(params))
        self._loaded_at = time.monotonic()

    def put(self, report: Mapping[str, Any]) -> None:
        """Write-through of a report this app just wrote."""
        row = row_of(report)
        with self._lock:
            self._rows[row.report_id] = row
            self._ordered.clear()

    def _refresh_in_background(self) -> None:
        if not self._refreshing.acquire(blocking=False):
            return  # one refresh at a time

        def run() -> None:
            try:
                self.refresh()
            except Exception:
                logger.warning("worklist refresh failed", exc_info=True)
            finally:
                self._refreshing.release()

        threading.Thread(target=run, name="worklist-refresh", daemon=True).start()

    def page(self, query: WorklistQuery) -> Worklist:
        if not self._loaded_at:
            with self._refreshing:  # the first request of an instance waits for the load
                if not self._loaded_at:
                    self.load()
        elif time.monotonic() - self._loaded_at > self.refresh_s:
            self._refresh_in_background()
        with self._lock:
            rows = self._ordered.get(query.newest_first)
            if rows is None:
                rows = in_worklist_order(self._rows.values(), query.newest_first)
                self._ordered[query.newest_first] = rows
        return build_page(rows, query, ordered=True)
