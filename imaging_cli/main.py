"""The operator CLI `imaging`: one console script, one module per subcommand.

Each module in `imaging_cli.commands` defines `register(subparsers)`, which adds its parser and
sets `func` (called with the parsed arguments, returning the exit status). Modules are imported
only when needed, so `imaging render` never pays for the demo's dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from imaging_pipeline.version import __version__

from imaging_cli import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imaging",
        description="Operate the imaging pipeline: render, analyze, ingest, backfill, demo.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the release"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"imaging {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        from imaging_cli.credentials import credentials_problem

        problem = credentials_problem(error)
        if problem is None:
            raise
        print(f"imaging {args.command}: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
