"""`imaging replay-dead-letters ENV`: send dead letters back to the events topic.

The same implementation as the review app's operations page (imaging_pipeline.dead_letters).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DESCRIPTION = """\
Pulls the messages Pub/Sub dead-lettered for the processor (the pull subscription
<prefix>-process-dicom-events-dead-letter of the environment's project), republishes each to the
DICOM events topic (<prefix>-dicom-events) with its original data and attributes, and
acknowledges a dead letter only after its republish succeeded: a failure leaves it where it was.
Fix the cause first (see the runbook), then replay. Processing is idempotent, so replaying an
instance that was processed meanwhile is harmless.

Uses Application Default Credentials, or PUBSUB_EMULATOR_HOST for a local Pub/Sub emulator.
Exit status: 0 all replayed (or listed, with --dry-run), 1 some failed, 2 configuration error.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay-dead-letters",
        help="republish the processor's dead letters to the events topic",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "environment", metavar="ENV", help="environment name (environments/ENV.yaml)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the dead letters that would be replayed; change nothing",
    )
    parser.add_argument(
        "--limit",
        type=_positive,
        metavar="N",
        help="look at no more than N dead letters (default: all)",
    )
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def resource_names(project_id: str, name_prefix: str) -> tuple[str, str]:
    """(dead-letter subscription, events topic) as stacks/pipeline_stack.py names them."""
    return (
        f"projects/{project_id}/subscriptions/{name_prefix}-process-dicom-events-dead-letter",
        f"projects/{project_id}/topics/{name_prefix}-dicom-events",
    )


def run(args: argparse.Namespace) -> int:
    from imaging_pipeline.adapters import dead_letters

    from stacks.config import ConfigError, load_environments

    try:
        (env,) = load_environments([args.environment])
    except ConfigError as error:
        print(f"imaging replay-dead-letters: {error}", file=sys.stderr)
        return 2
    subscription, topic = resource_names(env.config.project_id, env.config.name_prefix)
    verb = "would replay" if args.dry_run else "replaying"
    print(f"{verb} dead letters of {subscription} to {topic}", file=sys.stderr)

    def show(outcome: str, letter: dead_letters.DeadLetter) -> None:
        attempts = letter.attempts if letter.attempts is not None else "?"
        print(f"{outcome}\t{letter.message_id}\tattempts={attempts}\t{letter.instance_path}")

    report = dead_letters.replay(
        dead_letters.subscriber_client(),
        dead_letters.publisher_client(),
        subscription,
        topic,
        limit=args.limit,
        dry_run=args.dry_run,
        on_message=show,
    )
    for letter, reason in report.failed:
        print(f"not replayed (kept): {letter.message_id}: {reason}", file=sys.stderr)
    done = len(report.would_replay) if args.dry_run else len(report.replayed)
    print(
        f"{'would replay' if args.dry_run else 'replayed'}: {done}  failed: {len(report.failed)}",
        file=sys.stderr,
    )
    return 0 if report.ok else 1
