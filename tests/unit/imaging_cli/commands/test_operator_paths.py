"""The paths an operator takes by mistake or on purpose: output types, bad paths, truncated
files, an environment's settings for `imaging analyze`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydicom.data import get_testdata_file

from imaging_cli.main import main
from tests.support.process import LOCAL_SETTINGS, projection, to_bytes

ROOT = Path(__file__).resolve().parents[4]
CT = str(get_testdata_file("CT_small.dcm"))
JPEG2000 = Path(str(get_testdata_file("MR_small_jp2klossless.dcm")))


@pytest.mark.parametrize(
    ("name", "magic"), [("ct.png", b"\x89PNG"), ("ct.jpg", b"\xff\xd8"), ("ct.JPEG", b"\xff\xd8")]
)
def test_output_extension_picks_the_format(tmp_path: Path, name: str, magic: bytes) -> None:
    out = tmp_path / name
    assert main(["render", CT, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-o", "{tmp}/ct.gif"], "cannot tell the format from '.gif'; use .png, .jpg or .jpeg"),
        (["-o", "{tmp}/ct"], "cannot tell the format from 'no extension'"),
        (["-o", "{tmp}/ct.png", "--format", "jpeg"], "is PNG but --format says jpeg"),
        (["-o", "{tmp}/missing/ct.png"], "directory {tmp}/missing does not exist"),
        (["-o", "{tmp}"], "cannot tell the format"),
    ],
)
def test_bad_outputs_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = [a.format(tmp=tmp_path) for a in argv]
    assert main(["render", CT, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imaging render: ") and len(err.strip().splitlines()) == 1
    assert message.format(tmp=tmp_path) in err


def test_unwritable_output_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir.png").mkdir()
    assert main(["render", CT, "-o", str(tmp_path / "dir.png")]) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("fraction", [0.5, 0.9])
@pytest.mark.parametrize("command", ["render", "analyze"])
@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
def test_truncated_files_are_called_truncated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, fraction: float
) -> None:
    data = JPEG2000.read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: int(len(data) * fraction)])
    extra = ["-o", str(tmp_path / "x.png")] if command == "render" else []
    assert main([command, str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "not_dicom" not in err and "Warning" not in err


def _env_file(tmp_path: Path, rules: list[dict[str, object]]) -> Path:
    data = yaml.safe_load((ROOT / "environments" / "dev.yaml").read_text())
    # The offline analyzer's rules (blank_image, ...): config validation refuses rules the
    # configured analyzer can never fire, so the file names that analyzer.
    data.setdefault("pipeline", {}).update(analyzer="local", rules=rules)
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def xray_with_text(tmp_path: Path) -> Path:
    path = tmp_path / "cr.dcm"
    path.write_bytes(to_bytes(projection("CR", text="PORTABLE STAT PNEUMOTHORAX")))
    return path


def test_analyze_applies_an_environments_rules(
    tmp_path: Path, xray_with_text: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo's rules the offline analyzer can fire (it reports no labels or objects).
    rules = [r for r in LOCAL_SETTINGS["rules"] if r["finding"] not in ("label", "object")]
    env = _env_file(tmp_path, rules)
    assert main(["analyze", str(xray_with_text), "--env", str(env)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["priority"] == "critical" and "critical-words" in result["rules"]


def test_analyze_env_by_name_reads_environments_dir(
    xray_with_text: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["analyze", str(xray_with_text), "--env", "prod"]) == 0
    assert json.loads(capsys.readouterr().out)["priority"] in ("routine", "urgent", "critical")


def test_analyze_env_errors_are_plain(
    tmp_path: Path, xray_with_text: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(xray_with_text), "--env", "nowhere"]) == 2
    bad = _env_file(tmp_path, [{"name": "x", "finding": "label", "priority": "panic"}])
    assert main(["analyze", str(xray_with_text), "--env", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "--env nowhere: no environments/nowhere.yaml" in err
    assert f"{bad}: pipeline.rules[0].priority: 'panic' is not allowed" in err


def test_analyze_settings_inline_json(
    xray_with_text: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inline = json.dumps({"rules": LOCAL_SETTINGS["rules"]})
    assert main(["analyze", str(xray_with_text), "--settings", inline]) == 0
    assert json.loads(capsys.readouterr().out)["priority"] == "critical"
    assert main(["analyze", str(xray_with_text), "--settings", "{oops"]) == 2
    assert "--settings: not valid JSON" in capsys.readouterr().err
