"""`imaging analyze FILE`: the offline pipeline on one file, JSON out, status 2 for skips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imaging_pipeline.fhir.mapping import validate_bundle
from pydicom.data import get_testdata_file

from imaging_cli.main import main
from tests.support.process import LOCAL_SETTINGS, PHI, projection, to_bytes


@pytest.fixture
def xray_with_text(tmp_path: Path) -> Path:
    path = tmp_path / "cr.dcm"
    path.write_bytes(to_bytes(projection("CR", text="PORTABLE STAT PNEUMOTHORAX")))
    return path


def test_prints_findings_priority_and_a_valid_bundle(
    xray_with_text: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(LOCAL_SETTINGS))
    assert main(["analyze", str(xray_with_text), "--settings", str(settings)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["priority"] == "critical"
    assert result["rules"] == ["burned-in-text", "critical-words"]
    [finding] = result["findings"]
    assert finding["kind"] == "burned_in_text" and finding["priority"] == "critical"
    validate_bundle(result["bundle"])
    kinds = [e["resource"]["resourceType"] for e in result["bundle"]["entry"]]
    assert kinds == ["Device", "ImagingStudy", "Observation", "DiagnosticReport"]
    report = result["bundle"]["entry"][-1]["resource"]
    assert report["subject"]["identifier"]["value"] == PHI["PatientID"]


def test_default_settings_flag_text_as_urgent(
    xray_with_text: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(xray_with_text)]) == 0
    assert json.loads(capsys.readouterr().out)["priority"] == "urgent"


def test_non_image_objects_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(get_testdata_file("test-SR.dcm"))]) == 2
    assert "unsupported_sop_class" in capsys.readouterr().err


def test_bad_settings_exit_2(
    xray_with_text: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "s.json"
    settings.write_text('{"rules": [{"name": "x", "finding": "label", "priority": "critical"}]}')
    assert main(["analyze", str(xray_with_text), "--settings", str(settings)]) == 2
    assert "needs 'terms'" in capsys.readouterr().err


def test_not_dicom_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(b"hello")
    assert main(["analyze", str(path)]) == 2
    assert capsys.readouterr().err.startswith("imaging analyze:")


def test_sr_option_writes_the_sr_the_processor_would_store(
    xray_with_text: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pydicom
    from imaging_pipeline.fhir.mapping import AnalyzerIdentity
    from imaging_pipeline.sr.build import SourceImage, sr_identity
    from imaging_pipeline.sr.read import read_report

    out = tmp_path / "sr.dcm"
    assert main(["analyze", str(xray_with_text), "--sr", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    source = pydicom.dcmread(xray_with_text)
    sr = pydicom.dcmread(out)
    analyzer = AnalyzerIdentity(result["analyzer"]["name"], result["analyzer"]["version"])
    ids = sr_identity(source.StudyInstanceUID, source.SOPInstanceUID, analyzer)
    assert (sr.SeriesInstanceUID, sr.SOPInstanceUID) == (ids.series_uid, ids.instance_uid)
    report = read_report(sr, SourceImage(source.Rows, source.Columns))
    assert [r.finding.kind for r in report.findings] == [f["kind"] for f in result["findings"]]
    assert [r.priority for r in report.findings] == [f["priority"] for f in result["findings"]]
    assert report.priority == result["priority"]
    validate_bundle(result["bundle"])
    study = result["bundle"]["entry"][1]["resource"]
    assert [s["modality"]["code"] for s in study["series"]] == ["CR", "SR"]
    diagnostic = result["bundle"]["entry"][-1]["resource"]
    assert {"system": "urn:dicom:uid", "value": f"urn:oid:{ids.instance_uid}"} in diagnostic[
        "identifier"
    ]
    assert diagnostic["presentedForm"][0]["url"] == out.resolve().as_uri()
