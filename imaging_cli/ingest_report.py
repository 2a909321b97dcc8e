"""What `imaging ingest` tells the operator at the end: the counts line and the report file."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from imaging_cli.bulk_ingest import FileResult
from imaging_cli.ingest_sources import SourceObject

FIELDS = ("uri", "outcome", "detail", "sop_instance_uid")


def not_attempted(
    objects: Sequence[SourceObject], results: Sequence[FileResult]
) -> list[FileResult]:
    """Files listed but never tried (interrupted, or stopped because the store is down)."""
    seen = {r.uri for r in results}
    return [FileResult(o.uri, "not_attempted") for o in objects if o.uri not in seen]


def summary_line(results: Sequence[FileResult]) -> str:
    counts = Counter(r.outcome for r in results)
    line = (
        f"files: {len(results)}  stored: {counts['stored']}  "
        f"already in store: {counts['skipped_existing'] + counts['already_present']}  "
        f"not DICOM: {counts['not_dicom']}  failed: {counts['failed']}"
    )
    if counts["not_attempted"]:
        line += f"  not attempted: {counts['not_attempted']}"
    return line


def write_report(path: Path, results: Sequence[FileResult]) -> None:
    """One row per file: CSV when `path` ends in .csv, JSON lines otherwise."""
    rows = [{f: getattr(r, f) for f in FIELDS} for r in results]
    with path.open("w", encoding="utf-8", newline="") as out:
        if path.suffix.lower() == ".csv":
            writer = csv.DictWriter(out, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        else:
            out.writelines(json.dumps(row) + "\n" for row in rows)
