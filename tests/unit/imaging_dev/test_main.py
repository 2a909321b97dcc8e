"""`imaging-dev` names the dev extra when its packages are missing; `imaging demo` says where
the demo went. Neither starts anything."""

from __future__ import annotations

import importlib.util

import pytest

from imaging_cli.main import main as imaging_main
from imaging_dev import main as dev_main


def test_missing_dev_packages_are_named_with_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "moto" else real(name)
    )
    assert dev_main.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "missing moto" in err and "pip install -e '.[dev]'" in err


def test_operator_cli_demo_points_to_the_dev_tooling(capsys: pytest.CaptureFixture[str]) -> None:
    assert imaging_main(["demo", "--keep"]) == 2
    assert "imaging-dev demo" in capsys.readouterr().err
