"""Synthesizing and reading cdk.tf.json stacks (shared by the infrastructure tests and by
tests.infra.write_inventory, which runs without pytest after `make synth`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_synth(
    outdir: Path,
    *,
    naive: bool = False,
    env_dir: Path | None = None,
    environments: tuple[str, ...] = (),
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs `python main.py` in a fresh process, as `cdktn synth` does."""
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir)}
    env.pop("ENVIRONMENTS", None)
    env.update(extra_env or {})
    if naive:
        env["IMAGING_SYNTH_NAIVE"] = "1"
    if env_dir is not None:
        env["IMAGING_ENVIRONMENTS_DIR"] = str(env_dir)
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *environments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def load_stacks(outdir: Path) -> dict[str, dict[str, Any]]:
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((outdir / "stacks").glob("*/cdk.tf.json"))
    }


@dataclass(frozen=True)
class Resource:
    type: str
    key: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        """Construct path inside the stack, e.g. `healthcare/fhir` (stable and readable)."""
        full: str = self.body["//"]["metadata"]["path"]
        return full.split("/", 1)[1]

    @property
    def address(self) -> str:
        return f"{self.type}.{self.key}"


def resources(stack: dict[str, Any], kind: str = "resource") -> Iterator[Resource]:
    for type_, items in stack.get(kind, {}).items():
        for key, body in items.items():
            yield Resource(type_, key, body)


def of_type(stack: dict[str, Any], type_: str) -> list[Resource]:
    return [r for r in resources(stack) if r.type == type_]


def at(stack: dict[str, Any], path: str) -> Resource:
    found = [r for r in resources(stack) if r.path == path]
    assert len(found) == 1, f"no single resource at {path!r}: {[r.path for r in found]}"
    return found[0]


def ref(resource: Resource, attribute: str) -> str:
    return f"${{{resource.type}.{resource.key}.{attribute}}}"


@dataclass(frozen=True)
class Binding:
    """One IAM member resource: `role` for `member` on `target` (a reference or project)."""

    type: str
    path: str
    target: str
    role: str
    member: str


TARGET_FIELDS = (
    "dicom_store_id",
    "fhir_store_id",
    "topic",
    "subscription",
    "bucket",
    "crypto_key_id",
    "service_account_id",
    "web_backend_service",
    "name",
    "project",
)


def iam_bindings(stack: dict[str, Any]) -> list[Binding]:
    found = []
    for r in resources(stack):
        if r.type.endswith("_iam_member"):
            target = next(str(r.body[f]) for f in TARGET_FIELDS if f in r.body)
            found.append(Binding(r.type, r.path, target, r.body["role"], r.body["member"]))
    return found


# Resources of the stacks that exist only in google-beta (its modules keep the google_ prefix).
BETA_ONLY = frozenset({"google_project_service_identity"})


def provider_module(type_: str, data: bool = False) -> str:
    """The prebuilt provider module that declares Terraform type `type_`."""
    prefix = "data_" if data else ""
    if type_.startswith("time_"):
        return f"cdktn_provider_time.{prefix}{type_.removeprefix('time_')}"
    if type_ in BETA_ONLY:
        return f"cdktn_provider_google_beta.{prefix}{type_}"
    return f"cdktn_provider_google.{prefix}{type_.removeprefix('google_')}"
