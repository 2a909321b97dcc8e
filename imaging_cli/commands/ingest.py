"""`imaging ingest SOURCE... --store STORE`: bulk-upload DICOM files into a DICOM store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXAMPLES = """examples:
  imaging ingest ./archive --store http://127.0.0.1:8042/dicom-web
  imaging ingest gs://staging/incoming/ --store projects/p/locations/l/datasets/d/dicomStores/s
  imaging ingest s3://old-pacs/2019/ --store URL --s3-endpoint-url http://127.0.0.1:5000

Files the store already has are skipped (QIDO-RS per series), so an interrupted run can simply
be started again. Files that are not DICOM are reported and skipped; the exit status is 1 when
any DICOM file could not be stored (corrupt, rejected, or the store kept failing).
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="bulk-upload DICOM files from a path, gs:// or s3:// into a DICOM store",
        description="Upload DICOM files with STOW-RS, with bounded concurrency; resumable.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="file or directory (recursive), gs://bucket/prefix, s3://bucket/prefix",
    )
    parser.add_argument(
        "--store",
        required=True,
        metavar="STORE",
        help="DICOMweb base URL (http(s)://...) or Google DICOM store path "
        "projects/P/locations/L/datasets/D/dicomStores/S (uses Application "
        "Default Credentials)",
    )
    parser.add_argument(
        "--workers", type=_positive, default=4, metavar="N", help="concurrent uploads (default 4)"
    )
    parser.add_argument(
        "--s3-endpoint-url",
        metavar="URL",
        help="S3 endpoint for S3-compatible stores or moto (default: AWS)",
    )
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="do not ask the store what it has; upload every file",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print one line per file, not only problems"
    )
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imaging_cli.bulk_ingest import BulkIngest, FileResult
    from imaging_cli.ingest_sources import SourceError, SourceObject, list_source
    from imaging_cli.store_target import resolve_store

    try:
        target = resolve_store(args.store)
    except ValueError as error:
        print(f"imaging ingest: {error}", file=sys.stderr)
        return 2
    objects: list[SourceObject] = []
    try:
        for spec in args.sources:
            objects.extend(list_source(spec, s3_endpoint_url=args.s3_endpoint_url))
    except SourceError as error:
        print(f"imaging ingest: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # cloud listing errors: no such bucket, no credentials...
        print(
            f"imaging ingest: cannot list sources: {type(error).__name__}: {error}", file=sys.stderr
        )
        return 2

    bulk = BulkIngest(target.session(), target.dicomweb_url, resume=not args.no_resume)
    progress = tqdm(
        total=len(objects),
        unit="file",
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        desc="ingest",
    )

    def report(result: FileResult) -> None:
        progress.update(1)
        if args.verbose or result.outcome in ("failed", "not_dicom"):
            line = f"{result.outcome:16} {result.uri}" + (
                f"  ({result.detail})" if result.detail else ""
            )
            progress.write(line, file=sys.stdout)

    with progress:
        summary = bulk.run(objects, workers=args.workers, on_result=report)
    counts = summary.counts
    print(
        f"files: {len(summary.results)}  stored: {counts['stored']}  "
        f"already in store: {counts['skipped_existing'] + counts['already_present']}  "
        f"not DICOM: {counts['not_dicom']}  failed: {counts['failed']}"
    )
    return 0 if summary.ok else 1
