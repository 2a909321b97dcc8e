"""Builds the CDK Terrain app: one stack per selected environment."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from cdktn import App

import modules  # noqa: F401  (installs the lazy provider loader before any provider import)
from stacks.config import ENVIRONMENTS_DIR, ConfigError, Environment, load_environments
from stacks.pipeline_stack import PipelineStack

# `cdktn synth` passes the output directory in CDKTF_OUTDIR (the name CDK Terrain kept from
# CDKTF); `python main.py` uses the default.
DEFAULT_OUTDIR = "cdktf.out"


def selected_environments(argv: Sequence[str]) -> list[str] | None:
    """Environments named on the command line, else in $ENVIRONMENTS (separated by spaces or
    commas: `dev,prod`, `dev prod` and `dev, prod` are the same), else all."""
    names = [a for a in argv if a.strip()]
    if not names:
        names = [n for n in re.split(r"[\s,]+", os.environ.get("ENVIRONMENTS", "")) if n]
    return names or None


def synth(environments: Sequence[Environment], outdir: str | None = None) -> Path:
    out = outdir or os.environ.get("CDKTF_OUTDIR") or DEFAULT_OUTDIR
    app = App(outdir=out)
    for env in environments:
        PipelineStack(app, env)
    app.synth()
    return Path(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(
            "usage: python main.py [ENVIRONMENT ...]   (default: every file in environments/;"
            " or set ENVIRONMENTS='dev prod' or ENVIRONMENTS=dev,prod)"
        )
        return 0
    try:
        directory = Path(os.environ.get("IMAGING_ENVIRONMENTS_DIR") or ENVIRONMENTS_DIR)
        environments = load_environments(selected_environments(args), directory)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    out = synth(environments)
    for env in environments:
        print(f"synthesized {env.name}: {out / 'stacks' / env.name / 'cdk.tf.json'}")
    return 0
