"""`imaging backfill`: republish the store's notifications for instances it already holds."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

DESCRIPTION = """\
List instances with QIDO-RS and publish, for each, the Pub/Sub message the DICOM store sends
when an instance is stored (data: the instance path; attributes: action=StoreInstances,
storeName, modality). The processor's push subscription then handles them like new instances:
use it to analyse an archive stored before the pipeline existed, or to recover notifications
that were lost. Processing is idempotent (FHIR conditional creates), so overlaps are harmless.

--since/--until filter on StudyDate (0008,0020), the date the study was performed, not the
date it was stored: QIDO-RS range matching on the study level. Studies without a StudyDate are
only included when neither option is given.

Listing streams page by page and stays under the Cloud Healthcare API's QIDO-RS caps (offset at
most 1,000,000; limit at most 5,000 studies or 50,000 instances): a query with more matches is
split by StudyDate ranges, a study with more instances series by series.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="republish store notifications for existing instances (QIDO-RS -> Pub/Sub)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--store",
        required=True,
        metavar="STORE_PATH",
        help="projects/P/locations/L/datasets/D/dicomStores/S: names the "
        "instances in the messages; queried through the Healthcare API unless "
        "--dicomweb-url is given",
    )
    parser.add_argument(
        "--topic",
        required=True,
        metavar="projects/P/topics/T",
        help="the topic the store notifies (the processor's subscription's)",
    )
    parser.add_argument(
        "--dicomweb-url",
        metavar="URL",
        help="query this DICOMweb server instead (a local store standing in "
        "for STORE_PATH, e.g. Orthanc's http://127.0.0.1:8042/dicom-web)",
    )
    parser.add_argument(
        "--since",
        type=_date,
        metavar="YYYY-MM-DD",
        help="only studies with StudyDate on or after this date",
    )
    parser.add_argument(
        "--until",
        type=_date,
        metavar="YYYY-MM-DD",
        help="only studies with StudyDate on or before this date",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be published (one instance path per line); publish nothing",
    )
    parser.set_defaults(func=run)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def run(args: argparse.Namespace) -> int:
    from imaging_pipeline.errors import PipelineError
    from imaging_pipeline.events import STORE_PATH
    from tqdm import tqdm

    from imaging_cli.qido_listing import ListingError
    from imaging_cli.store_notifications import list_instances, publish_notifications
    from imaging_cli.store_target import StoreTarget, healthcare_dicomweb_url

    if not STORE_PATH.fullmatch(args.store):
        print(
            f"imaging backfill: --store must be projects/P/locations/L/datasets/D/"
            f"dicomStores/S, got {args.store!r}",
            file=sys.stderr,
        )
        return 2
    if not args.topic.startswith("projects/") or "/topics/" not in args.topic:
        print(
            f"imaging backfill: --topic must be projects/P/topics/T, got {args.topic!r}",
            file=sys.stderr,
        )
        return 2
    url = (args.dicomweb_url or healthcare_dicomweb_url(args.store)).rstrip("/")
    target = StoreTarget(url, args.store)
    progress = tqdm(
        unit="instance", file=sys.stderr, disable=not sys.stderr.isatty(), desc="backfill"
    )
    instances = list_instances(
        target.session(),
        url,
        since=args.since,
        until=args.until,
        on_note=lambda note: progress.write(f"imaging backfill: {note}", file=sys.stderr),
    )
    try:
        with progress:
            if args.dry_run:
                count = 0
                for instance in instances:
                    print(instance.path(args.store))
                    count += 1
                    progress.update(1)
                print(
                    f"dry run: {count} notification(s) would be published to {args.topic}",
                    file=sys.stderr,
                )
                return 0
            summary = publish_notifications(
                instances, args.store, args.topic, on_done=lambda _ok: progress.update(1)
            )
    except (PipelineError, ListingError) as error:
        print(f"imaging backfill: listing failed: {error}", file=sys.stderr)
        return 1
    print(f"published: {summary.published}  failed: {summary.failed}  topic: {args.topic}")
    return 0 if summary.failed == 0 else 1
