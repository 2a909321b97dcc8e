"""A QIDO-RS store stand-in that enforces the Cloud Healthcare API's paging caps.

The archive is virtual (study and instance UIDs are computed, never stored), so a store with a
million studies costs nothing until a page is asked for. Requests over a cap are answered 400,
as the Healthcare API does, and recorded in `violations` so a test can assert there were none.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STUDY_UID, SERIES_UID, SOP_UID, STUDY_DATE = "0020000D", "0020000E", "00080018", "00080020"


@dataclass
class VirtualArchive:
    studies_per_day: dict[date, int]
    undated: int = 0  # studies without a StudyDate
    series_per_study: int = 1
    instances_per_series: int = 2
    big_studies: dict[str, tuple[int, int]] = field(default_factory=dict)  # uid -> (series, n)

    def _days(self, low: date | None, high: date | None) -> list[date]:
        return [
            d
            for d in sorted(self.studies_per_day)
            if (low is None or d >= low) and (high is None or d <= high)
        ]

    def study_count(self, date_range: str | None) -> int:
        if date_range is None:
            return self.undated + sum(self.studies_per_day.values())
        low, high = _parse_range(date_range)
        return sum(self.studies_per_day[d] for d in self._days(low, high))

    def studies(self, date_range: str | None, offset: int, limit: int) -> list[dict[str, Any]]:
        """Studies in a stable order (undated first), computed only for the page asked."""
        out: list[dict[str, Any]] = []
        skip = offset
        blocks: list[tuple[date | None, int]] = []
        if date_range is None:
            blocks.append((None, self.undated))
            blocks += [(d, self.studies_per_day[d]) for d in self._days(None, None)]
        else:
            low, high = _parse_range(date_range)
            blocks += [(d, self.studies_per_day[d]) for d in self._days(low, high)]
        for day, count in blocks:
            if skip >= count:
                skip -= count
                continue
            for j in range(skip, count):
                if len(out) == limit:
                    return out
                out.append(_study(day, j))
            skip = 0
        return out

    def shape(self, study_uid: str) -> tuple[int, int]:
        return self.big_studies.get(study_uid, (self.series_per_study, self.instances_per_series))

    def instances(self, study_uid: str, series_uid: str | None) -> list[dict[str, Any]]:
        series_count, per_series = self.shape(study_uid)
        out = []
        for s in range(series_count):
            uid = f"{study_uid}.{s}"
            if series_uid is not None and uid != series_uid:
                continue
            out += [{SERIES_UID: _v(uid), SOP_UID: _v(f"{uid}.{i}")} for i in range(per_series)]
        return out

    def series(self, study_uid: str) -> list[dict[str, Any]]:
        return [{SERIES_UID: _v(f"{study_uid}.{s}")} for s in range(self.shape(study_uid)[0])]

    def every_instance(self, dated_only: bool = False) -> Iterator[str]:
        for study in self.studies(None, 0, 10**9):
            if dated_only and STUDY_DATE not in study:
                continue
            uid = study[STUDY_UID]["Value"][0]
            for item in self.instances(uid, None):
                yield item[SOP_UID]["Value"][0]


def _v(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]}


def _study(day: date | None, j: int) -> dict[str, Any]:
    if day is None:
        return {STUDY_UID: _v(f"2.25.0.{j}")}
    return {
        STUDY_UID: _v(f"2.25.{day.toordinal()}.{j}"),
        STUDY_DATE: {"vr": "DA", "Value": [day.strftime("%Y%m%d")]},
    }


def _parse_range(text: str) -> tuple[date | None, date | None]:
    def day(part: str) -> date | None:
        return date(int(part[:4]), int(part[4:6]), int(part[6:8])) if part else None

    if "-" not in text:
        return day(text), day(text)
    low, high = text.split("-", 1)
    return day(low), day(high)


@dataclass(frozen=True)
class Caps:
    max_offset: int = 1_000_000
    max_study_limit: int = 5_000
    max_instance_limit: int = 50_000


class CappedStore:
    """Serves /dicomWeb/studies, .../studies/X/series, .../instances with the caps enforced."""

    def __init__(self, archive: VirtualArchive, caps: Caps = Caps()) -> None:
        self.archive, self.caps = archive, caps
        self.violations: list[str] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body = store.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def dicomweb_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/dicomWeb"

    def __enter__(self) -> CappedStore:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, raw_path: str) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append(raw_path)
        parts = url.path.removeprefix("/dicomWeb/").split("/")
        instance_level = parts[-1] == "instances"
        cap = self.caps.max_instance_limit if instance_level else self.caps.max_study_limit
        limit = int(query.get("limit", "100"))
        offset = int(query.get("offset", "0"))
        problem = ""
        if limit > cap:
            problem = f"limit {limit} > {cap}"
        elif offset > self.caps.max_offset:
            problem = f"offset {offset} > {self.caps.max_offset}"
        if problem:
            with self._lock:
                self.violations.append(f"{raw_path}: {problem}")
            return 400, {"error": {"code": 400, "message": problem}}
        if parts == ["studies"]:
            items = self.archive.studies(query.get("StudyDate"), offset, limit)
            return 200, items
        if len(parts) == 3 and parts[2] == "series":
            items = self.archive.series(parts[1])
        elif len(parts) == 3 and instance_level:
            items = self.archive.instances(parts[1], None)
        elif len(parts) == 5 and instance_level:
            items = self.archive.instances(parts[1], parts[3])
        else:
            return 404, {"error": {"code": 404, "message": "not found"}}
        return 200, items[offset : offset + limit]
