"""The first-time setup app: `python -m stacks.setup_app ENV [ENV ...]` synthesizes the setup
stack of each environment into cdktf.out/stacks/<env>-setup/ (see stacks/setup_stack.py).

The deploy identity's access is derived from the environment's pipeline stack itself: it is
built in memory (never synthesized here) and the Terraform types it declares are looked up in
stacks/deployer_access.py.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Like main.py: the handlers' settings schema is importable without installing anything.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "handlers"))

from cdktn import App

import modules  # noqa: F401  (lazy provider loading before any provider import)
from stacks.app import DEFAULT_OUTDIR
from stacks.config import (
    ENVIRONMENTS_DIR,
    ConfigError,
    Environment,
    load_environments,
)
from stacks.pipeline_stack import PipelineStack
from stacks.setup_stack import SetupStack


def pipeline_needs(env: Environment, scratch: str) -> tuple[set[str], set[str]]:
    """(Terraform types, project-level roles) of the environment's pipeline stack, read from
    its synthesized JSON (written to `scratch`, never deployed from there)."""
    Path(scratch).mkdir(parents=True, exist_ok=True)
    app = App(outdir=scratch)
    PipelineStack(app, env)
    app.synth()
    stack = json.loads((Path(scratch) / "stacks" / env.name / "cdk.tf.json").read_text())
    types = set(stack.get("resource", {})) | {f"data.{t}" for t in stack.get("data", {})}
    roles = {
        body["role"]
        for body in stack.get("resource", {}).get("google_project_iam_member", {}).values()
    }
    return types, roles


def synth(environments: Sequence[Environment], outdir: str | None = None) -> Path:
    out = outdir or os.environ.get("CDKTF_OUTDIR") or DEFAULT_OUTDIR
    app = App(outdir=out)
    for env in environments:
        types, roles = pipeline_needs(env, str(Path(out) / ".setup-scratch" / env.name))
        SetupStack(app, env, pipeline_types=types, project_roles=roles)
    app.synth()
    return Path(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a.strip()]
    if not args or any(a in ("-h", "--help") for a in args):
        print("usage: python -m stacks.setup_app ENVIRONMENT [ENVIRONMENT ...]")
        return 0 if args else 2
    try:
        directory = Path(os.environ.get("IMAGING_ENVIRONMENTS_DIR") or ENVIRONMENTS_DIR)
        environments = load_environments(args, directory)
        out = synth(environments)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    for env in environments:
        print(
            f"synthesized {env.name}-setup: {out / 'stacks' / f'{env.name}-setup' / 'cdk.tf.json'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
