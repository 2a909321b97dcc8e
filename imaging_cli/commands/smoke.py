"""`imaging smoke ENV`: one synthetic instance through a deployed environment, then removed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Post-deploy smoke test. Stores one synthetic CT instance marked as test data (no PHI) in the
environment's DICOM store with STOW-RS, waits until the processor's DiagnosticReport for it is
readable in the FHIR store, prints how long each stage took, and deletes what it created.
Uses Application Default Credentials (needs DICOM write and FHIR read/delete on the stores).
Exit status: 0 passed, 1 the report did not appear or clean-up failed, 2 bad environment.

--dicomweb-url/--fhir-url point at other servers speaking the same protocols (local servers
standing in for the environment's stores).
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "smoke",
        help="post-deploy smoke test: one synthetic instance through ENV, then deleted",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("environment", metavar="ENV", help="a file in environments/ (dev, ...)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS")
    parser.add_argument("--dicomweb-url", metavar="URL", help="use this DICOMweb server instead")
    parser.add_argument("--fhir-url", metavar="URL", help="use this FHIR R4 base URL instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The environment files and their schema live in the repository (stacks/, environments/).
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from imaging_cli.smoke import Smoke, SmokeError, SmokeTarget
    from stacks import naming
    from stacks.config import ConfigError, load_environments

    try:
        (env,) = load_environments([args.environment])
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    target = SmokeTarget(
        env.name,
        args.dicomweb_url or naming.dicomweb_url(env),
        args.fhir_url or naming.fhir_base_url(env),
    )
    print(f"smoke test of {env.name}: {target.dicomweb_url} -> {target.fhir_base_url}")
    try:
        result = Smoke(target).run(timeout_s=args.timeout)
    except SmokeError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    for stage, seconds in result.stages.items():
        print(f"{seconds:9.2f} s  {stage}")
    print(f"study {result.study_uid}: report {result.report or '-'}")
    print(f"deleted: {', '.join(result.deleted) or 'nothing'}")
    for problem in result.problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    print("passed" if result.ok else "failed")
    return 0 if result.ok else 1
