"""The deployed entry module sets the functions' interpreter up as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"


def test_the_functions_process_runs_the_gc_at_the_documented_threshold() -> None:
    probe = "import gc, main; print(gc.get_threshold() == main.GC_THRESHOLD, main.GC_THRESHOLD)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=HANDLERS,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.split()[0] == "True", result.stdout
    assert "(20000, 10, 10)" in result.stdout  # not CPython's default (700, 10, 10)
