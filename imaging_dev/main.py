"""`imaging-dev`: the developer commands (today the local demo), apart from the operator CLI.

Installed with the project; its servers need the `dev` extra (emulators, moto) and Debian
packages that `scripts/bootstrap.sh` installs, so a missing one is named with how to get it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

from imaging_dev import demo

# Python packages of the `dev` extra the local servers import.
DEV_MODULES = ("gcp_storage_emulator", "moto")
INSTALL_HINT = (
    "install the dev extra: pip install -e '.[dev]' from a clone "
    "(or run `make setup`, which also installs Orthanc, Node and the Pub/Sub emulator)"
)


def missing_dev_modules() -> list[str]:
    return [name for name in DEV_MODULES if importlib.util.find_spec(name) is None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imaging-dev", description="Developer tooling: run the pipeline locally."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = missing_dev_modules()
    if missing:
        print(f"imaging-dev: missing {', '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
