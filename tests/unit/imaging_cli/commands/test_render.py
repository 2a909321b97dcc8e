"""`imaging render FILE [-o OUT] [--max-size N] [--format jpeg|png] [--frame K]`."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from imaging_cli.main import main
from tests.support.render_fixtures import bundled, decoded, part10, synthetic


def test_writes_the_image_and_prints_one_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ct.png"
    status = main(
        [
            "render",
            str(bundled("CT_small.dcm")),
            "-o",
            str(out),
            "--format",
            "png",
            "--max-size",
            "64",
        ]
    )
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["rows"] == 128 and summary["columns"] == 128 and summary["frames"] == 1
    assert summary["photometric_interpretation"] == "MONOCHROME2"
    assert set(summary["window"]) == {"center", "width"} and summary["window"]["width"] > 1
    assert (summary["width"], summary["height"]) == (64, 64)
    assert summary["bytes"] == out.stat().st_size
    assert decoded(out.read_bytes()).shape == (64, 64)


def test_frame_and_default_output_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(bundled("examples_ybr_color.dcm")), "--frame", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frame"] == 3 and summary["frames"] == 30 and summary["window"] is None
    assert (tmp_path / "examples_ybr_color.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("rtplan.dcm", "non_image_sop_class"),
        ("MR_truncated.dcm", "truncated"),
        ("README.txt", "not_dicom"),
    ],
)
def test_unsupported_input_exits_2_with_the_reason_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str
) -> None:
    out = tmp_path / "out.jpg"
    assert main(["render", str(bundled(name)), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert reason in captured.err and captured.out == ""
    assert not out.exists()


def test_bad_frame_and_missing_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "two.dcm"
    source.write_bytes(part10(synthetic(np.zeros((2, 4, 4), dtype=np.uint8))))
    assert main(["render", str(source), "--frame", "2", "-o", str(tmp_path / "x.jpg")]) == 2
    assert "frame 2" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "missing.dcm")]) == 2
    assert "missing.dcm" in capsys.readouterr().err


def test_console_script_is_declared_and_installed(tmp_path: Path) -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("imaging") == "imaging_cli.main:main"
    executable = Path(sys.executable).parent / "imaging"
    result = subprocess.run(
        [
            str(executable),
            "render",
            str(bundled("MR_small.dcm")),
            "-o",
            str(tmp_path / "m.png"),
            "--format",
            "png",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["media_type"] == "image/png"
