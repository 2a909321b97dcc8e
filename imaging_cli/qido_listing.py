"""QIDO-RS listing that stays under a store's paging caps and streams page by page.

The Cloud Healthcare API refuses a QIDO-RS `offset` above 1,000,000 and a `limit` above 5,000
(studies, series) or 50,000 (instances). Paging one query with limit/offset therefore cannot
reach past the millionth study. Listing here:

- pages with limits under the caps and yields each page as it arrives (memory: one page);
- before paging past a full first page, probes whether the query has more matches than the
  offset cap allows; if so the query is partitioned instead of paged: studies by StudyDate
  range (halved until each part fits), a study's instances series by series;
- never sends an offset above the cap; a single day holding more studies than the cap can page
  is reported as `ListingError` rather than silently truncated.

Studies without a StudyDate match no date range: they are listed only while the unpartitioned
query fits under the cap (the caller is told through `on_note`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import requests
from imaging_pipeline.adapters.http import request_with_retries
from imaging_pipeline.errors import classify_http_status

STUDY_INSTANCE_UID = "0020000D"
SERIES_INSTANCE_UID = "0020000E"
ATTEMPTS = 3
TIMEOUT_S = 120.0
# Lower bound of the date partitions when no --since is given; earlier dates get one open range.
EARLIEST = date(1900, 1, 1)

Item = dict[str, Any]


@dataclass(frozen=True)
class QidoCaps:
    """A store's paging limits (Cloud Healthcare API's by default) and the page sizes used."""

    max_offset: int = 1_000_000
    max_study_limit: int = 5_000
    max_instance_limit: int = 50_000
    study_page: int = 1_000
    instance_page: int = 5_000

    def __post_init__(self) -> None:
        if not 0 < self.study_page <= self.max_study_limit:
            raise ValueError("study_page must be between 1 and max_study_limit")
        if not 0 < self.instance_page <= self.max_instance_limit:
            raise ValueError("instance_page must be between 1 and max_instance_limit")


GOOGLE_CAPS = QidoCaps()


class ListingError(Exception):
    """The store cannot be listed completely within its caps."""


def _da(day: date) -> str:
    return day.strftime("%Y%m%d")


def date_range(since: date | None, until: date | None) -> str:
    """A QIDO-RS range match on a DA attribute: `A-`, `-B` or `A-B` (PS3.18 8.3.4.1)."""
    return f"{_da(since) if since else ''}-{_da(until) if until else ''}"


class QidoLister:
    def __init__(
        self,
        session: requests.Session,
        dicomweb_url: str,
        caps: QidoCaps = GOOGLE_CAPS,
        *,
        on_note: Callable[[str], None] = lambda _: None,
        today: date | None = None,
    ) -> None:
        self.session = session
        self.base = dicomweb_url.rstrip("/")
        self.caps = caps
        self.on_note = on_note
        self.today = today or date.today()

    # --- one query, page by page ---------------------------------------------------------------
    def _get(self, url: str, params: dict[str, str]) -> list[Item]:
        response = request_with_retries(
            self.session,
            "GET",
            url,
            dependency="dicom-store",
            max_attempts=ATTEMPTS,
            timeout_s=TIMEOUT_S,
            params=params,
            headers={"Accept": "application/dicom+json"},
        )
        if response.status_code in (204, 404):  # no match; some servers 404 unknown studies
            return []
        if response.status_code != 200:
            raise classify_http_status("dicom-store", response.status_code)
        page: list[Item] = response.json() or []
        return page

    def _fits(self, url: str, params: dict[str, str]) -> bool:
        """Whether every match is reachable with offsets up to the cap (one probe query)."""
        probe = {**params, "limit": "1", "offset": str(self.caps.max_offset)}
        return not self._get(url, probe)

    def _pages(
        self, url: str, params: dict[str, str], page: int, first: list[Item]
    ) -> Iterator[Item]:
        """Yields `first`, then the following pages, never with an offset above the cap."""
        yield from first
        offset = len(first)
        while len(first) == page:
            if offset > self.caps.max_offset:  # _fits said no more match; never ask
                return
            first = self._get(url, {**params, "limit": str(page), "offset": str(offset)})
            yield from first
            offset += len(first)

    def _query(self, url: str, params: dict[str, str], page: int) -> Iterator[Item] | None:
        """The query's matches as a stream, or None when they do not fit under the cap."""
        first = self._get(url, {**params, "limit": str(page), "offset": "0"})
        if len(first) == page and not self._fits(url, params):
            return None
        return self._pages(url, params, page, first)

    # --- studies -------------------------------------------------------------------------------
    def studies(
        self, since: date | None = None, until: date | None = None, fields: str = ""
    ) -> Iterator[Item]:
        """Every study whose StudyDate is in [since, until] (all studies when both are None)."""
        url = f"{self.base}/studies"
        params = {"includefield": fields or STUDY_INSTANCE_UID}
        if since is None and until is None:
            stream = self._query(url, params, self.caps.study_page)
            if stream is not None:
                yield from stream
                return
            self.on_note(
                f"more than {self.caps.max_offset:,} studies: listing by StudyDate ranges; "
                "studies without a StudyDate cannot be listed past that number"
            )
        low = since or EARLIEST
        high = until or self.today + timedelta(days=366)
        if since is None:  # the open range below the partitions (rare: very old dates)
            yield from self._studies_between(url, params, None, low - timedelta(days=1))
        yield from self._studies_between(url, params, low, high)
        if until is None:  # the open range above (dates in the future)
            yield from self._studies_between(url, params, high + timedelta(days=1), None)

    def _studies_between(
        self, url: str, params: dict[str, str], low: date | None, high: date | None
    ) -> Iterator[Item]:
        query = {**params, "StudyDate": date_range(low, high)}
        stream = self._query(url, query, self.caps.study_page)
        if stream is not None:
            yield from stream
            return
        if low is None or high is None or low >= high:
            where = date_range(low, high)
            raise ListingError(
                f"more than {self.caps.max_offset:,} studies with StudyDate {where}: the store's "
                "QIDO-RS offset cap cannot page them; list that range with another tool"
            )
        middle = low + (high - low) // 2
        yield from self._studies_between(url, params, low, middle)
        yield from self._studies_between(url, params, middle + timedelta(days=1), high)

    # --- instances -----------------------------------------------------------------------------
    def instances(self, study_uid: str, fields: str) -> Iterator[Item]:
        """Every instance of one study; series by series when the study exceeds the cap."""
        url = f"{self.base}/studies/{study_uid}/instances"
        stream = self._query(url, {"includefield": fields}, self.caps.instance_page)
        if stream is not None:
            yield from stream
            return
        series_url = f"{self.base}/studies/{study_uid}/series"
        series_stream = self._query(
            series_url, {"includefield": SERIES_INSTANCE_UID}, self.caps.study_page
        )
        if series_stream is None:
            raise ListingError(f"study {study_uid}: more series than the offset cap can page")
        for series in series_stream:
            uid = _first(series, SERIES_INSTANCE_UID)
            if not uid:
                continue
            url = f"{self.base}/studies/{study_uid}/series/{uid}/instances"
            stream = self._query(url, {"includefield": fields}, self.caps.instance_page)
            if stream is None:
                raise ListingError(
                    f"series {uid}: more instances than the store's offset cap can page"
                )
            yield from stream


def _first(item: Item, tag: str) -> str:
    element = item.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return str(values[0]) if isinstance(values, list) and values else ""
