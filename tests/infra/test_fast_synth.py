"""The fast path (modules/_provider.py) changes how the provider loads, never what it writes."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modules import _jsii_preload
from stacks.app import selected_environments
from tests.infra.conftest import ENVIRONMENTS, run_synth


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_synth_output_is_byte_identical_with_and_without_the_fast_path(
    synth_dir: Path, tmp_path: Path
) -> None:
    naive_dir = tmp_path / "naive"
    result = run_synth(naive_dir, naive=True)
    assert result.returncode == 0, result.stderr
    fast, naive = tree(synth_dir), tree(naive_dir)
    assert sorted(fast) == sorted(naive)
    assert any(name.endswith("cdk.tf.json") for name in fast)
    different = [name for name in fast if fast[name] != naive[name]]
    assert different == []


def test_output_is_the_same_without_loading_the_assemblies_early(
    synth_dir: Path, tmp_path: Path
) -> None:
    result = run_synth(tmp_path / "out", extra_env={"IMAGING_JSII_PRELOAD": "0"})
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "out") == tree(synth_dir)


@pytest.mark.parametrize("package", _jsii_preload.PACKAGES)
def test_early_loads_are_those_the_bindings_send(package: str) -> None:
    # modules/_jsii_preload.py reads each binding's JSIIAssembly.load call with a pattern;
    # here the same call is read with Python's parser.
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    init = Path(next(iter(spec.submodule_search_locations))) / "_jsii" / "__init__.py"
    call = next(
        node
        for node in ast.walk(ast.parse(init.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
    )
    name, version, filename = (ast.literal_eval(call.args[i]) for i in (0, 1, 3))
    assert _jsii_preload.assembly(package) == (name, version, str(init.parent / str(filename)))


def test_shared_forward_refs_resolve_to_the_same_type_hints() -> None:
    # modules/_jsii_type_hints.py: every type-checking stub of the provider modules the stacks
    # use most (and of the largest, compute_url_map) resolves to the same hints with the shared
    # ForwardRefs as with its own string annotations. In a fresh interpreter: it changes jsii.

    code = """
import sys, typing
sys.path.insert(0, "handlers")
from modules import _jsii_type_hints
assert _jsii_type_hints.install()
from jsii import _type_checking
import importlib
names = ["cloudfunctions2_function", "compute_url_map", "storage_bucket", "pubsub_subscription",
         "monitoring_alert_policy", "provider"]
modules = [importlib.import_module("cdktn_provider_google." + name) for name in names]
stubs = [
    value
    for module in modules
    for key, value in vars(getattr(module, "_private", module)).items()  # see publication
    if key.startswith("_typecheckingstub__")
]
assert len(stubs) > 500, len(stubs)
expected = [typing.get_type_hints(stub) for stub in stubs]
shared = [_type_checking.cached_type_hints(stub) for stub in stubs]
assert all(isinstance(v, typing.ForwardRef) for s in stubs for v in s.__annotations__.values())
assert shared == expected
assert [repr(h) for h in shared] == [repr(h) for h in expected]
print(len(stubs))
"""
    out = _run_on_the_fast_path(code, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def test_fast_path_does_not_import_the_provider_root() -> None:
    # In a fresh interpreter: the stack must build without running the package root's
    # 1,470 imports; only the submodules it uses may be loaded.

    code = (
        "import sys; sys.path.insert(0, 'handlers');"
        "import stacks.app, stacks.pipeline_stack;"
        "loaded = [m for m in sys.modules if m.startswith('cdktn_provider_google.')];"
        "print(len(loaded))"
    )
    out = _run_on_the_fast_path(code)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = int(out.stdout.strip())
    assert 0 < loaded < 100, f"{loaded} provider submodules imported"


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [([], "", None), (["dev"], "prod", ["dev"]), ([], "dev, prod", ["dev", "prod"])],
)
def test_environment_selection(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: str, expected: list[str] | None
) -> None:
    monkeypatch.setenv("ENVIRONMENTS", env)
    assert selected_environments(argv) == expected


def test_cdktn_cli_synth_writes_the_same_stacks(synth_dir: Path, tmp_path: Path) -> None:
    # `cdktn synth` (npm cdktn-cli, pinned in package.json) runs cdktf.json's app command; it
    # must need no cloud account or network and give exactly what `python main.py` gives.
    root = Path(__file__).resolve().parents[2]
    cli = root / "node_modules" / ".bin" / "cdktn"
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "CI": "true"}
    env.pop("ENVIRONMENTS", None)
    result = subprocess.run(
        [str(cli), "synth", "--output", str(tmp_path / "out")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names = ", ".join(sorted(ENVIRONMENTS))
    assert f"Generated Terraform code for the stacks: {names}" in result.stdout
    assert tree(tmp_path / "out") == tree(synth_dir)


def _run_on_the_fast_path(
    code: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter at the repository root, with the fast path on."""
    env = {k: v for k, v in os.environ.items() if k != "IMAGING_SYNTH_NAIVE"}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        timeout=timeout,
    )
