"""The JavaScript preloaded into jsii's Node process on the fast path (modules/_*.cjs) changes how
fast the stacks synthesize, never what they are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import jsii

from modules._provider import NODE_SINGLE_PROCESS, PROJECT_NODE
from tests.infra.synthesized import run_synth

KERNEL = Path(jsii.__file__).parent / "_embedded" / "jsii" / "lib__program.js"
USED = "provider-submodules.json"  # written by _lazy_provider_index.cjs


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def node() -> str:
    return str(PROJECT_NODE) if PROJECT_NODE.is_file() else shutil.which("node") or "node"


def synth(out: Path, cache: str) -> dict[str, bytes]:
    result = run_synth(out, extra_env={"IMAGING_NODE_CODE_CACHE": cache})
    assert result.returncode == 0, result.stderr
    return tree(out)


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.bin"))


def submodules_used(cache: Path) -> dict[str, list[str]]:
    """The submodules noted as used, by package name (without the version)."""
    noted = json.loads((cache / USED).read_text())
    return {key.rsplit("@", 1)[0]: names for key, names in noted.items()}


def valid(entry: Path) -> bool:
    data = entry.read_bytes()
    return len(data) > 4 and zlib.crc32(data[4:]) == int.from_bytes(data[:4], "little")


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
    counts = json.loads(out.stdout)
    assert counts == [1] * 5, counts


def test_code_cache_never_changes_the_synthesized_output(tmp_path: Path) -> None:
    cache = tmp_path / "code-cache"
    without = synth(tmp_path / "without", "")
    assert not cache.exists()
    cold = synth(tmp_path / "cold", str(cache))
    written = entries(cache)
    assert len(written) > 50, "the first synth fills the cache"
    assert all(valid(e) for e in written)
    mtimes = {e: e.stat().st_mtime_ns for e in written}
    used = submodules_used(cache)
    assert "storageBucket" in used["@cdktn/provider-google"], "the submodules are noted"
    noted = (cache / USED).stat().st_mtime_ns
    warm = synth(tmp_path / "warm", str(cache))
    assert {e: e.stat().st_mtime_ns for e in entries(cache)} == mtimes, "a warm synth reads only"
    assert (cache / USED).stat().st_mtime_ns == noted, "and uses the same submodules"
    assert any(name.endswith("cdk.tf.json") for name in without)
    assert cold == without
    assert warm == without


def test_submodules_required_early_change_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "code-cache"
    expected = synth(tmp_path / "first", str(cache))
    used = submodules_used(cache)
    key = next(
        k for k in json.loads((cache / USED).read_text()) if k.startswith("@cdktn/provider-google@")
    )
    # Noted besides the used ones: one the stacks do not use and one that does not exist. The
    # output is the same, and the next note holds only what the synth used; so after files
    # that are not notes at all.
    extra = {
        key: [*used["@cdktn/provider-google"], "accessContextManagerAccessLevel", "noSuchThing"]
    }
    (cache / USED).write_text(json.dumps(extra))
    assert synth(tmp_path / "second", str(cache)) == expected
    assert submodules_used(cache) == used
    for junk in ("not json", "[1, 2]", json.dumps({key: "storageBucket"}), ""):
        (cache / USED).write_text(junk)
        assert synth(tmp_path / "junk", str(cache)) == expected
        shutil.rmtree(tmp_path / "junk")
    assert submodules_used(cache) == used


def test_corrupt_or_foreign_cache_entries_are_ignored_and_rewritten(tmp_path: Path) -> None:
    cache = tmp_path / "code-cache"
    expected = synth(tmp_path / "first", str(cache))
    written = entries(cache)
    damaged = written[: len(written) // 2]
    bad: dict[Path, bytes] = {}
    for i, entry in enumerate(damaged):
        data = bytearray(entry.read_bytes())
        if i % 4 == 0:  # cut short, as by a full disk
            entry.write_bytes(data[: len(data) // 2])
        elif i % 4 == 1:  # one byte flipped
            data[len(data) // 2] ^= 0xFF
            entry.write_bytes(bytes(data))
        elif i % 4 == 2:  # empty
            entry.write_bytes(b"")
        else:  # intact checksum, but not V8 code cache data: V8 rejects it
            junk = os.urandom(len(data) - 4)
            entry.write_bytes(zlib.crc32(junk).to_bytes(4, "little") + junk)
        bad[entry] = entry.read_bytes()
    assert synth(tmp_path / "second", str(cache)) == expected
    assert entries(cache) == written
    assert all(valid(e) and e.read_bytes() != bad[e] for e in damaged), "each is written again"
    assert synth(tmp_path / "third", str(cache)) == expected
