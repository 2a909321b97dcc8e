"""`imaging demo` moved to the dev tooling; this command only says where (exit 2)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

MOVED = (
    "The local demo is developer tooling, not an operator command. From a clone run "
    "`make demo`, or `imaging-dev demo` after `pip install -e '.[dev]'`."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="moved: see `imaging-dev demo`", description=MOVED)
    # The options it used to take, so that an old invocation gets the message, not a usage error.
    parser.add_argument("--keep", "--no-samples", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(MOVED, file=sys.stderr)
    return 2
