"""Local Terraform state never lives inside the disposable output directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def test_local_state_is_outside_the_output_directory(
    stacks: dict[str, dict[str, Any]], synth_dir: Path
) -> None:
    local = {
        env: s["terraform"]["backend"]["local"]
        for env, s in stacks.items()
        if "local" in s["terraform"].get("backend", {})
    }
    assert local  # dev keeps its state locally
    for env, backend in local.items():
        where = Path(os.path.normpath(synth_dir / "stacks" / env / backend["path"]))
        assert where == synth_dir.parent / "state" / f"{env}.tfstate"
        assert synth_dir not in where.parents  # rm -rf cdktf.out keeps it
