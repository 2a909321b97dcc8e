"""`--help` works for `imaging` and every subcommand, through the installed console script."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from imaging_cli import commands

IMAGING = Path(sys.executable).with_name("imaging")
# One module per subcommand, named like it with "_" for "-" (imaging_cli.main discovers them
# the same way): replay_dead_letters is `imaging replay-dead-letters`.
SUBCOMMANDS = sorted(
    m.name.replace("_", "-")
    for m in pkgutil.iter_modules(commands.__path__)
    if not m.name.startswith("_")
)


def test_every_expected_subcommand_is_registered() -> None:
    expected = {"ingest", "backfill", "demo", "render", "analyze", "replay-dead-letters"}
    assert expected <= set(SUBCOMMANDS)


@pytest.mark.parametrize(
    "argv", [[], *([name] for name in SUBCOMMANDS)], ids=["imaging", *SUBCOMMANDS]
)
def test_help(argv: list[str]) -> None:
    result = subprocess.run(
        [str(IMAGING), *argv, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: imaging {' '.join(argv)}".rstrip())
    assert result.stderr == ""
