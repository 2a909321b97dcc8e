"""The JavaScript preloaded into jsii's Node process on the fast path (modules/_*.cjs) changes how
fast the stacks synthesize, never what they are."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsii

from modules._provider import NODE_SINGLE_PROCESS, PROJECT_NODE

KERNEL = Path(jsii.__file__).parent / "_embedded" / "jsii" / "lib__program.js"


def node() -> str:
    return str(PROJECT_NODE) if PROJECT_NODE.is_file() else shutil.which("node") or "node"


def test_kernel_rewrites_match_the_installed_jsii() -> None:
    # _jsii_single_process.cjs rewrites exact pieces of jsii's kernel and skips any it does not
    # find; after a jsii upgrade that moved one, synth would still work, only slower: fail here.
    script = (
        "const fs = require('node:fs');"
        f"const {{ CHANNEL, KERNEL_PATCHES }} = require({json.dumps(str(NODE_SINGLE_PROCESS))});"
        f"const text = fs.readFileSync({json.dumps(str(KERNEL))}, 'utf8');"
        "const count = (s) => text.split(s).length - 1;"
        "const counts = [count(CHANNEL), ...KERNEL_PATCHES.map((p) => count(p.from))];"
        "console.log(JSON.stringify(counts));"
    )
    out = subprocess.run(
        [node(), "-e", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == [1] * 4
