"""`imaging ingest SOURCE... --store STORE`: bulk-upload DICOM files into a DICOM store."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  imaging ingest ./archive --store http://127.0.0.1:8042/dicom-web
  imaging ingest gs://staging/incoming/ --store projects/p/locations/l/datasets/d/dicomStores/s
  imaging ingest s3://old-pacs/2019/ --store URL --s3-endpoint-url http://127.0.0.1:5000

Files the store already has are skipped (QIDO-RS per series), so an interrupted run can simply
be started again. Files that are not DICOM are reported and skipped; the exit status is 1 when
any DICOM file could not be stored (corrupt, truncated, rejected), and the run stops early when
the store cannot be reached. Ctrl-C prints the counts so far (exit 130). On a terminal a bar
shows the rate and the time left; otherwise a progress line is printed every 10 seconds.
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
        "--bulk-import",
        action="store_true",
        help="gs:// sources into a Google DICOM store: let the store import the objects itself "
        "(dicomStores.import, a long-running operation) instead of uploading each file from "
        "here; for archives too large for one machine",
    )
    parser.add_argument(
        "--healthcare-api",
        default=None,
        metavar="URL",
        help="Cloud Healthcare API base URL for --bulk-import "
        "(default https://healthcare.googleapis.com/v1; a local stand-in in tests)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="write every file's outcome to FILE (CSV if it ends in .csv, else JSON lines), "
        "also when the run is interrupted or stopped",
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="when stderr is not a terminal, print a progress line this often (default 10)",
    )
    parser.add_argument(
        "--poll-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="with --bulk-import: how often to ask the operation for progress (default 10)",
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


def run_bulk_import(args: argparse.Namespace) -> int:
    from imaging_pipeline.adapters.http import session_for
    from imaging_pipeline.events import STORE_PATH

    from imaging_cli.bulk_import import (
        HEALTHCARE_API,
        BulkImportError,
        gcs_import_uri,
        progress_text,
        start_import,
        wait_for_import,
    )

    if not STORE_PATH.fullmatch(args.store):
        print(
            "imaging ingest: --bulk-import needs --store projects/P/locations/L/datasets/D/"
            f"dicomStores/S (a Google DICOM store), got {args.store!r}",
            file=sys.stderr,
        )
        return 2
    api = args.healthcare_api or HEALTHCARE_API
    try:
        uris = [gcs_import_uri(s) for s in args.sources]
    except BulkImportError as error:
        print(f"imaging ingest: --bulk-import reads gs:// sources only: {error}", file=sys.stderr)
        return 2
    session = session_for(api)
    tty = sys.stderr.isatty()
    failed = False
    for uri in uris:
        last = [0.0]

        def show(progress: Any, uri: str = uri, last: list[float] = last) -> None:
            now = time.monotonic()
            if tty:
                print(f"\r{progress_text(progress)}", end="", file=sys.stderr, flush=True)
            elif now - last[0] >= args.progress_every:
                last[0] = now
                print(f"{uri}: {progress_text(progress)}", file=sys.stderr, flush=True)

        operation = ""
        try:
            operation = start_import(session, args.store, uri, api=api)
            print(f"importing {uri} into {args.store}: operation {operation}", file=sys.stderr)
            result = wait_for_import(
                session, operation, api=api, interval_s=args.poll_every, on_progress=show
            )
        except BulkImportError as error:
            print(f"imaging ingest: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(
                f"\nimaging ingest: stopped following {operation or 'the import'}; the import "
                "goes on in the store (gcloud healthcare operations describe ...)",
                file=sys.stderr,
            )
            return 130
        if tty:
            print(file=sys.stderr)
        p = result.progress
        print(f"{uri}: imported: {p.success}  failed: {p.failure}  operation: {operation}")
        if result.error:
            failed = True
            print(
                f"imaging ingest: {uri}: the import reported an error: "
                f"{result.error.get('message', result.error)} (code {result.error.get('code')})",
                file=sys.stderr,
            )
        if p.failure or result.error:
            failed = True
            if result.logs_url:
                print(f"  per-object errors: {result.logs_url}", file=sys.stderr)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    if args.bulk_import:
        return run_bulk_import(args)
    from imaging_cli.bulk_ingest import BulkIngest, FileResult
    from imaging_cli.credentials import credentials_problem
    from imaging_cli.ingest_report import not_attempted, summary_line, write_report
    from imaging_cli.ingest_sources import SourceError, SourceObject, list_source
    from imaging_cli.progress import Progress
    from imaging_cli.store_target import StoreUnreachableError, probe_store, resolve_store

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
    except Exception as error:  # cloud listing errors: no such bucket, access denied...
        if credentials_problem(error):
            raise  # imaging_cli.main says it in one line, like every command
        print(
            f"imaging ingest: cannot list sources: {type(error).__name__}: {error}", file=sys.stderr
        )
        return 2

    if args.report:
        try:
            args.report.open("w").close()  # fail now, not after hours of uploads
        except OSError as error:
            print(f"imaging ingest: --report {args.report}: {error.strerror}", file=sys.stderr)
            return 2
    session = target.session()
    try:
        probe_store(session, target.dicomweb_url)
    except StoreUnreachableError as error:
        print(f"imaging ingest: {error}; nothing was uploaded", file=sys.stderr)
        if args.report:
            write_report(args.report, not_attempted(objects, []))
        return 1
    bulk = BulkIngest(session, target.dicomweb_url, resume=not args.no_resume)
    progress = Progress(
        label="ingest",
        total=len(objects),
        unit="file",
        stream=sys.stderr,
        tty=sys.stderr.isatty(),
        every_s=args.progress_every,
    )
    results: list[FileResult] = []

    def report(result: FileResult) -> None:
        results.append(result)
        progress.update(result.outcome)
        if args.verbose or result.outcome in ("failed", "not_dicom"):
            line = f"{result.outcome:16} {result.uri}" + (
                f"  ({result.detail})" if result.detail else ""
            )
            progress.write(line, file=sys.stdout)

    interrupted = False
    try:
        bulk.run(objects, workers=args.workers, on_result=report)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
    everything = results + not_attempted(objects, results)
    if args.report:
        write_report(args.report, everything)
    print(summary_line(everything))
    if interrupted:
        print(
            f"imaging ingest: interrupted after {len(results)} of {len(objects)} files; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    if bulk.stopped:
        print(
            f"imaging ingest: stopped early, the store is unreachable ({bulk.stopped}); "
            f"{len(objects) - len(results)} files were not attempted",
            file=sys.stderr,
        )
        return 1
    return 0 if not any(r.outcome == "failed" for r in results) else 1
