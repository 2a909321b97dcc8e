"""The release is described once and everywhere the same: version, changelog, label, licence."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from imaging_pipeline.version import __version__, label_value

ROOT = Path(__file__).resolve().parents[1]
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def test_version_is_semantic() -> None:
    assert SEMVER.match(__version__)


def test_package_metadata_reads_the_one_version() -> None:
    assert importlib.metadata.version("imaging-pipeline-gcp") == __version__
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]  # no second definition ...
    assert "version" in pyproject["project"]["dynamic"]  # ... it is read from the package
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "imaging_pipeline.version.__version__"}


def test_cli_prints_the_version() -> None:
    imaging = Path(sys.executable).with_name("imaging")
    result = subprocess.run(
        [str(imaging), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == f"imaging {__version__}"


def test_changelog_newest_entry_is_this_version() -> None:
    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert headings and headings[0] == __version__, headings


def test_label_value_is_a_valid_label() -> None:
    assert re.fullmatch(r"[a-z0-9_-]{1,63}", label_value())
    assert label_value("1.10.0") == "v1-10-0"


def test_licence_is_the_apache_licence_pyproject_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()
