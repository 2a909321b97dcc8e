"""The inventory writer of README's 'Adding an environment': right, and usable after make synth."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.infra.synthesized import ROOT, at
from tests.infra.test_inventory import load_inventory, mismatches, resolve
from tests.infra.write_inventory import build_inventory


def test_a_written_inventory_passes_against_its_own_stack(
    stacks: dict[str, dict[str, Any]],
) -> None:
    written = build_inventory(stacks["staging"], load_inventory("dev"))
    stack = stacks["staging"]
    assert {t: len(i) for t, i in stack["resource"].items()} == written["counts"]
    assert len(written["values"]) >= 20
    problems = []
    for path, expected in written["values"].items():
        problems += mismatches(resolve(expected, stack), at(stack, path).body, path)
    assert problems == []
    outputs = {name: body["value"] for name, body in stack["output"].items()}
    assert resolve(written["outputs"], stack) == outputs
    assert any("${" in str(v) and "/" in str(v) for v in written["outputs"].values())  # symbolic


def test_it_imports_without_pytest() -> None:
    # After `make synth` the .venv has the infra packages only: no pytest.
    code = (
        "import sys; sys.modules['pytest'] = None; "
        "import tests.infra.write_inventory as w; print(w.inventory_path('qa').name)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "qa.yaml"
