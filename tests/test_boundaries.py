"""Product and dev tooling stay apart: the functions and the operator CLI never import imaging_dev.

Two checks: a static one over every import statement (also the lazy ones inside functions), and
a dynamic one that loads every product module in a fresh interpreter and looks at sys.modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = (ROOT / "handlers", ROOT / "imaging_cli")
DEV_PACKAGES = ("imaging_dev", "tests", "bench")


def _imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif (  # importlib.import_module("imaging_dev...") with a literal name
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
        ):
            names.append(node.args[0].value)
    return names


def test_no_product_module_imports_dev_tooling() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for root in PRODUCT
        for path in root.rglob("*.py")
        for name in _imported_modules(path)
        if name.split(".")[0] in DEV_PACKAGES
    }
    assert not offenders, sorted(offenders)


def test_static_check_sees_a_dev_import(tmp_path: Path) -> None:
    """The scan above finds lazy and importlib imports (else it could never fail)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\n"
        "def f():\n    from imaging_dev.servers import orthanc\n"
        "importlib.import_module('imaging_dev.demo')\n"
    )
    assert _imported_modules(sample) == ["importlib", "imaging_dev.servers", "imaging_dev.demo"]


def test_loading_every_product_module_loads_no_dev_tooling() -> None:
    script = f"""
import importlib, json, pkgutil, sys
import imaging_cli, imaging_cli.commands, imaging_pipeline
import main  # handlers/main.py, the functions' entry points
for package in (imaging_pipeline, imaging_cli):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith(".__main__"):  # that one runs the CLI
            importlib.import_module(info.name)
from imaging_cli.main import build_parser
build_parser()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {DEV_PACKAGES!r})))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT / "handlers",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
