"""Synthesizes every environment once per test session; infrastructure tests read the JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacks.config import ENVIRONMENTS_DIR, discover
from tests.infra.synthesized import ROOT, load_stacks, run_synth

__all__ = ["ENVIRONMENTS", "ROOT", "load_stacks", "run_synth"]

# Every environment file, as synth finds them: a new environment gets every invariant test.
ENVIRONMENTS = tuple(path.stem for path in discover(ENVIRONMENTS_DIR))


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
