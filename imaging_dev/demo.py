"""`imaging-dev demo`: the pipeline end to end on this machine, with no cloud account."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

DESCRIPTION = """\
Starts Orthanc (the DICOM store), a FHIR R4 server, Google's Pub/Sub emulator, a Cloud Storage
emulator, both Cloud Functions (handlers/main.py under functions-framework, configured with
{"analyzer": "local"}) and the review app (local mode: no authentication, a banner says so);
generates a synthetic study set (CT in Hounsfield units, MR, CR MONOCHROME1, burned-in text,
colour US, a blank DX) plus some of pydicom's sample files; stages
them in gs://staging/incoming/ so the ingest function stores them; publishes the store's
notifications, which the push subscription delivers to the processor; prints what the processor
decided for each instance. Exits 0 when every instance reached a final outcome and none failed,
leaving no process behind.
"""
# The local analyzer with the default rules, plus one critical rule the demo's critical screen
# capture matches, so a critical outcome (and its alert on the critical-findings topic) shows.
CRITICAL_TERM = "pneumothorax"
CRITICAL_TEXT = "FINDING: PNEUMOTHORAX"  # OCR counts text from two words on
DEMO_SETTINGS: dict[str, Any] = {
    "analyzer": "local",
    "rules": [
        {
            "name": "burned-in-text",
            "finding": "burned_in_text",
            "min_score": 0.6,
            "priority": "urgent",
        },
        {"name": "blank-image", "finding": "blank_image", "min_score": 0.9, "priority": "urgent"},
        {
            "name": "critical-words",
            "finding": "text",
            "terms": [CRITICAL_TERM],
            "min_score": 0.5,
            "priority": "critical",
        },
    ],
}
COLUMNS = ("instance (file)", "modality", "outcome", "priority", "findings", "FHIR report")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally on synthetic and sample data",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the servers running afterwards (prints the review app's URL, "
        "Orthanc's explorer URL and the FHIR base) until Ctrl-C",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the processor (default 120)",
    )
    parser.add_argument(
        "--input",
        type=Path,
        metavar="DIR",
        help="run your own DICOM files (DIR, recursively) instead of the synthetic and sample ones",
    )
    parser.add_argument(
        "--no-samples",
        action="store_true",
        help="only the synthetic studies, not pydicom's sample files",
    )
    parser.set_defaults(func=run)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through LocalPipeline.stop(), like Ctrl-C


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imaging_dev.local_pipeline import LocalPipeline
    from imaging_dev.servers._base import ServerStartError
    from imaging_dev.synthetic import sample_files, study_set, write_instances

    # The servers live in their own process groups: a SIGTERM to the demo must stop them too.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    with tempfile.TemporaryDirectory(prefix="imaging-demo-") as tmp:
        if args.input is not None:
            if not args.input.is_dir():
                print(f"imaging demo: --input {args.input}: not a directory", file=sys.stderr)
                return 2
            files = sorted(p for p in args.input.rglob("*") if p.is_file())
            if not files:
                print(f"imaging demo: --input {args.input}: no files", file=sys.stderr)
                return 2
        else:
            files = write_instances(study_set(), Path(tmp))
            files += write_instances(demo_extras(), Path(tmp) / "extras")
            if not args.no_samples:
                files += sample_files()
        _say(f"starting local servers and functions; {len(files)} files to ingest")
        try:
            pipeline = LocalPipeline(settings=DEMO_SETTINGS, review_app=True).start()
        except (ServerStartError, FileNotFoundError) as error:
            print(f"imaging demo: a local server did not start: {error}", file=sys.stderr)
            return 2
        with pipeline:
            _endpoints(pipeline)
            staged = pipeline.stage(files)
            not_stored = [s for s in staged if s.outcome != "processed"]
            for result in not_stored:
                _say(f"ingest: {result.object_name}: {result.outcome} ({result.reason})")
            instances = pipeline.notify()
            _say(
                f"{len(instances)} instances in the DICOM store; notifications published, "
                "waiting for the processor"
            )
            with tqdm(
                total=len(instances),
                unit="instance",
                file=sys.stderr,
                desc="processed",
                disable=not sys.stderr.isatty(),
            ) as progress:
                results = pipeline.wait_for_results(
                    instances,
                    timeout=args.timeout,
                    on_progress=lambda done: progress.update(done - progress.n),
                )
            print(_table([_row(r) for r in results]))
            unfinished = [r for r in results if r.outcome in ("pending", "retry")]
            failed = [r for r in results if r.outcome == "failed"]
            print(
                f"\ninstances: {len(results)}  processed: "
                f"{sum(r.outcome == 'processed' for r in results)}  skipped: "
                f"{sum(r.outcome == 'skipped' for r in results)}  failed: {len(failed)}  "
                f"unfinished: {len(unfinished)}  staged objects not stored: {len(not_stored)}"
            )
            srs = pipeline.structured_reports()
            print(f"DICOM SRs (TID 1500) stored in Orthanc next to the images: {len(srs)}")
            status = 0 if not (unfinished or failed or not_stored) else 1
            if args.keep:
                _keep(pipeline)
    return status


def _endpoints(pipeline: Any) -> None:
    """Where everything listens, and the commands that use it (with --keep, after the run)."""
    from imaging_dev.local_pipeline import NOTIFICATION_TOPIC, STORE

    dicomweb, host = pipeline.orthanc.dicomweb_url, pipeline.pubsub.host
    for line in (
        f"DICOMweb URL:     {dicomweb}",
        f"FHIR base:        {pipeline.fhir.base_url}",
        *(
            [f"Review app:       {pipeline.review_app.url} (local mode, no authentication)"]
            if pipeline.review_app is not None
            else []
        ),
        f"Pub/Sub host:     {host}",
        f"Pub/Sub topic:    {NOTIFICATION_TOPIC}",
        f"store path:       {STORE}",
        f"ingest your files: imaging ingest DIR --store {dicomweb}",
        "then process them (Orthanc sends no notifications; backfill publishes them): "
        f"PUBSUB_EMULATOR_HOST={host} imaging backfill --store {STORE} "
        f"--topic {NOTIFICATION_TOPIC} --dicomweb-url {dicomweb}",
    ):
        _say(line)


def demo_extras(seed: str = "demo") -> list[Any]:
    """What the small study set lacks: images of realistic size (a 512x512 CT slice, a
    2048x2048 radiograph) and a screen capture whose text a critical rule matches."""
    import dataclasses

    from imaging_dev.synthetic import burned_in_text_image, cr_image, ct_series

    [ct] = ct_series(f"{seed}-full", slices=1, size=512)
    return [
        dataclasses.replace(ct, name="ct-512.dcm"),
        dataclasses.replace(cr_image(f"{seed}-full", size=2048), name="cr-2048.dcm"),
        dataclasses.replace(
            burned_in_text_image(f"{seed}-critical", text=CRITICAL_TEXT),
            name="sc-critical-finding.dcm",
        ),
    ]


def _keep(pipeline: Any) -> None:
    print(f"\nOrthanc explorer: {pipeline.orthanc.url}/app/explorer.html")
    print(f"DICOMweb:         {pipeline.orthanc.dicomweb_url}")
    print(f"FHIR base:        {pipeline.fhir.base_url}")
    print(f"Review app:       {pipeline.review_app.url}  (local mode, no authentication)")
    print("servers are running; press Ctrl-C to stop them", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        _say("stopping")


def _row(result: Any) -> tuple[str, ...]:
    findings = (
        ", ".join(f"{f.get('kind')} {float(f.get('score', 0)):.2f}" for f in result.findings) or "-"
    )
    outcome = result.outcome + (f" ({result.reason})" if result.reason else "")
    return (
        result.source or result.instance.sop_instance_uid,
        result.instance.modality or "?",
        outcome,
        result.priority or "-",
        findings,
        result.report or "-",
    )


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(COLUMNS, *rows, strict=False)]
    lines = [COLUMNS, tuple("-" * w for w in widths), *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _say(message: str) -> None:
    print(f"imaging demo: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m imaging_dev.demo [options]`: the demo without the operator CLI."""
    parser = argparse.ArgumentParser(prog="imaging")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["demo", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
