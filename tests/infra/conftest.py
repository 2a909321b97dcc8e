"""Synthesizes every environment once per test session; infrastructure tests read the JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacks.config import ENVIRONMENTS_DIR, discover

ROOT = Path(__file__).resolve().parents[2]
# Every environment file, as synth finds them: a new environment gets every invariant test.
ENVIRONMENTS = tuple(path.stem for path in discover(ENVIRONMENTS_DIR))


def run_synth(
    outdir: Path,
    *,
    naive: bool = False,
    env_dir: Path | None = None,
    environments: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Runs `python main.py` in a fresh process, as `cdktn synth` does."""
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir)}
    env.pop("ENVIRONMENTS", None)
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


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("cdktf.out")
    result = run_synth(out)
    assert result.returncode == 0, result.stderr
    yield out


@pytest.fixture(scope="session")
def stacks(synth_dir: Path) -> dict[str, dict[str, Any]]:
    """Synthesized JSON of every environment, by environment name."""
    loaded = load_stacks(synth_dir)
    assert sorted(loaded) == sorted(ENVIRONMENTS)
    return loaded
