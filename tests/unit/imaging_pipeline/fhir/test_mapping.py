"""One transaction bundle per instance: shape, references, idempotency keys, R4 validation."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs

import pydicom
import pytest
from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.fhir.mapping import (
    AnalyzerIdentity,
    InstanceInfo,
    build_transaction,
    dicom_datetime,
    instance_info,
    merge_imaging_study,
    validate_bundle,
)
from imaging_pipeline.rules import assess
from imaging_pipeline.settings import Rule
from pydicom.data import get_testdata_file

ANALYZER = AnalyzerIdentity("local-analyzer", "1.0+test")
RULES = (
    Rule(name="crit", finding="label", terms=("fracture",), min_score=0.5, priority="critical"),
)
SYSTEM = "urn:test:patient"


@pytest.fixture(scope="module")
def info() -> InstanceInfo:
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")), stop_before_pixels=True)
    return instance_info(ds)


def bundle_for(
    info: InstanceInfo, findings: list[Finding], existing: dict[str, Any] | None = None
) -> dict[str, Any]:
    return build_transaction(
        info,
        findings,
        assess(findings, RULES),
        ANALYZER,
        patient_system=SYSTEM,
        existing_study=existing,
        issued="2026-01-01T00:00:00+00:00",
    )


def by_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_instance_info_reads_the_header(info: InstanceInfo) -> None:
    assert info.modality == "CT"
    assert info.study_uid.startswith("1.3.6.1.4.1.5962")
    assert info.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert info.patient_id == "1CT1"
    # CT_small.dcm carries TimezoneOffsetFromUTC, so times keep their zone.
    assert info.study_datetime == "2004-01-19T07:27:30-05:00"


def test_bundle_has_every_resource_and_validates(info: InstanceInfo) -> None:
    findings = [Finding("label", "fracture", 0.9), Finding("burned_in_text", "text", 0.7)]
    bundle = bundle_for(info, findings)
    validate_bundle(bundle)
    assert bundle["type"] == "transaction"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Device", "ImagingStudy", "Observation", "Observation", "DiagnosticReport"]
    # Every write is conditional on a business identifier: redelivery matches, never duplicates.
    study = bundle["entry"][1]
    assert study["request"] == {
        "method": "POST",
        "url": "ImagingStudy",
        "ifNoneExist": f"identifier=urn:dicom:uid|urn:oid:{info.study_uid}",
    }
    for entry in bundle["entry"][:1] + bundle["entry"][2:]:
        identifier = entry["resource"]["identifier"][0]
        kind, query = entry["request"]["url"].split("?")
        assert entry["request"]["method"] == "PUT"
        assert kind == entry["resource"]["resourceType"]
        assert parse_qs(query) == {"identifier": [f"{identifier['system']}|{identifier['value']}"]}
    device = bundle["entry"][0]["request"]["url"]
    assert "%2B" in device and "+" not in device  # "1.0+x" must not decode to "1.0 x"


def test_report_fields(info: InstanceInfo) -> None:
    bundle = bundle_for(info, [Finding("label", "fracture", 0.9)])
    report = by_type(bundle, "DiagnosticReport")[0]["resource"]
    assert report["status"] == "preliminary"
    assert report["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "18748-4",
        "display": "Diagnostic imaging study",
    }
    assert report["identifier"][0]["value"] == f"{info.instance_uid}/local-analyzer/1.0+test"
    assert report["effectiveDateTime"] == info.content_datetime
    assert report["subject"] == {
        "type": "Patient",
        "identifier": {"system": SYSTEM, "value": info.patient_id},
    }
    assert "critical" in report["conclusion"] and "fracture (0.90)" in report["conclusion"]
    urls = {e["resource"]["resourceType"]: e["fullUrl"] for e in bundle["entry"]}
    assert report["imagingStudy"] == [{"reference": urls["ImagingStudy"]}]
    assert report["result"] == [{"reference": by_type(bundle, "Observation")[0]["fullUrl"]}]


def test_observation_carries_code_score_interpretation(info: InstanceInfo) -> None:
    bundle = bundle_for(
        info, [Finding("label", "fracture", 0.9), Finding("label", "radiography", 0.95)]
    )
    crit, routine = (e["resource"] for e in by_type(bundle, "Observation"))
    assert crit["code"]["text"] == "fracture"
    assert crit["valueQuantity"]["value"] == 0.9
    assert crit["interpretation"][0]["coding"][0]["code"] == "AA"
    assert routine["interpretation"][0]["coding"][0]["code"] == "N"
    device_url = by_type(bundle, "Device")[0]["fullUrl"]
    assert crit["device"] == {"reference": device_url}


def test_burned_in_words_never_reach_fhir(info: InstanceInfo) -> None:
    finding = Finding(
        "burned_in_text", "burned-in text (2 words)", 0.8, words=("secretname", "doe")
    )
    text = str(bundle_for(info, [finding]))
    assert "secretname" not in text


def test_same_input_gives_the_same_bundle(info: InstanceInfo) -> None:
    findings = [Finding("label", "fracture", 0.9)]
    assert bundle_for(info, findings) == bundle_for(info, findings)


def test_study_merge_adds_series_and_instances_once(info: InstanceInfo) -> None:
    subject = {"display": "x"}
    study = merge_imaging_study(None, info, subject)
    other = InstanceInfo(
        study_uid=info.study_uid,
        series_uid="1.2.9",
        instance_uid="1.2.9.1",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
        modality="MR",
    )
    merged = merge_imaging_study({**study, "id": "abc", "meta": {"versionId": "7"}}, other, subject)
    again = merge_imaging_study(merged, other, subject)
    assert again == merged
    assert merged["id"] == "abc" and "meta" not in merged
    assert merged["numberOfSeries"] == 2 and merged["numberOfInstances"] == 2
    assert [m["code"] for m in merged["modality"]] == ["CT", "MR"]


def test_existing_study_is_updated_with_its_version(info: InstanceInfo) -> None:
    existing = {
        **merge_imaging_study(None, info, {"display": "x"}),
        "id": "s1",
        "meta": {"versionId": "3"},
    }
    entry = by_type(bundle_for(info, [], existing), "ImagingStudy")[0]
    assert entry["request"] == {"method": "PUT", "url": "ImagingStudy/s1", "ifMatch": 'W/"3"'}


def test_no_findings_gives_a_report_without_results(info: InstanceInfo) -> None:
    bundle = bundle_for(info, [])
    validate_bundle(bundle)
    report = by_type(bundle, "DiagnosticReport")[0]["resource"]
    assert "result" not in report and report["conclusion"] == "Priority routine: no findings."


def test_invalid_resources_are_rejected_without_values(info: InstanceInfo) -> None:
    bundle = bundle_for(info, [Finding("label", "fracture", 0.9)])
    report = by_type(bundle, "DiagnosticReport")[0]["resource"]
    report["effectiveDateTime"] = "SECRET-VALUE"
    with pytest.raises(PermanentError) as err:
        validate_bundle(bundle)
    assert err.value.reason == "invalid_fhir"
    assert "effectiveDateTime" in str(err.value)
    assert "SECRET-VALUE" not in str(err.value)


def test_an_entry_missing_a_required_element_fails_the_bundle(info: InstanceInfo) -> None:
    # validate_bundle validates the Bundle only: each entry's resource must be checked as its
    # own type by that one pass (DiagnosticReport.status is required in R4).
    bundle = bundle_for(info, [Finding("label", "fracture", 0.9)])
    del by_type(bundle, "DiagnosticReport")[0]["resource"]["status"]
    with pytest.raises(PermanentError, match=r"entry\.\d+\.resource\.status"):
        validate_bundle(bundle)


def test_r5_only_fields_are_rejected(info: InstanceInfo) -> None:
    # DiagnosticReport.note exists in R5 only: proves validation uses the R4(B) models.
    bundle = bundle_for(info, [])
    by_type(bundle, "DiagnosticReport")[0]["resource"]["note"] = [{"text": "x"}]
    with pytest.raises(PermanentError, match="note"):
        validate_bundle(bundle)


@pytest.mark.parametrize(
    ("date", "time", "offset", "expected"),
    [
        ("20240131", "101530.25", "+0100", "2024-01-31T10:15:30+01:00"),
        ("20240131", "1015", "-0500", "2024-01-31T10:15:00-05:00"),
        ("20240131", "101530", None, "2024-01-31"),
        ("2024", None, None, None),
        (None, None, None, None),
    ],
)
def test_dicom_datetime(
    date: str | None, time: str | None, offset: str | None, expected: str | None
) -> None:
    assert dicom_datetime(date, time, offset) == expected


def _study_of(info: InstanceInfo, n: int) -> dict[str, Any]:
    """A stored study of `n` instances of the analyzed instance's series."""
    study = None
    for i in range(n):
        other = InstanceInfo(
            study_uid=info.study_uid,
            series_uid=info.series_uid,
            instance_uid=f"{info.series_uid}.{i + 100}",
            sop_class_uid=info.sop_class_uid,
            modality=info.modality,
            instance_number=i + 100,
        )
        study = merge_imaging_study(study, other, {"display": "x"})
    assert study is not None
    return {**study, "id": "s1", "meta": {"versionId": "1"}}


def test_merge_leaves_the_existing_study_unchanged(info: InstanceInfo) -> None:
    """The merge copies only what it changes; the study it was given stays as it was."""
    existing = _study_of(info, 3)
    before = copy.deepcopy(existing)
    merged = merge_imaging_study(existing, info, {"display": "x"})
    assert existing == before
    assert merged["numberOfInstances"] == 4 and merged["series"][0]["numberOfInstances"] == 4
    assert merged["series"][0]["instance"][:3] == before["series"][0]["instance"]


def _bundle_alone(bundle: dict[str, Any]) -> str | None:
    """The field paths the Bundle model's own validation names, as `validate_bundle` words
    them (or None: valid)."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    try:
        get_fhir_model_class("Bundle").model_validate(bundle)
    except (ValidationError, KeyError, ValueError) as exc:
        errors = getattr(exc, "errors", None)
        fields = {".".join(map(str, e["loc"])) for e in errors()} if errors else set()
        return ", ".join(sorted(fields or {type(exc).__name__}))
    return None


@pytest.mark.parametrize(
    "damage",
    [
        "none",
        "unknown-type",
        "not-a-resource",
        "no-resource",
        "two-entries",
        "wrong-value-type",
        "unknown-field",
        "unknown-bundle-field",
        "r5-field",
        "instance-value-type",
        "instance-unknown-field",
        "instance-removed-field",
        "element-value-type",
        "element-unknown-field",
        "element-null-in-list",
        "element-from-another-field",
    ],
)
def test_bundles_fail_and_name_fields_as_the_bundle_model_alone(
    info: InstanceInfo, damage: str
) -> None:
    """Entries are validated as their own type before the Bundle, and the elements and a
    study's instances that validated before are reused: the same bundles fail, with the field
    paths the Bundle model's validation alone gives (entry.N.resource...)."""
    existing = _study_of(info, 3)
    bundle = bundle_for(info, [Finding("label", "fracture", 0.9)], existing)
    validate_bundle(bundle)  # every instance of the study validated once before the damage
    entries = bundle["entry"]
    kinds = [e["resource"]["resourceType"] for e in entries]
    observation, report = kinds.index("Observation"), kinds.index("DiagnosticReport")
    instances = entries[kinds.index("ImagingStudy")]["resource"]["series"][0]["instance"]
    assert len(instances) == 4
    if damage == "unknown-type":
        entries[0]["resource"]["resourceType"] = "Spaceship"
    elif damage == "not-a-resource":
        entries[1]["resource"] = "text"
    elif damage == "no-resource":  # allowed: Bundle.entry.resource is 0..1
        del entries[1]["resource"]
    elif damage == "two-entries":
        del entries[observation]["resource"]["code"]
        del entries[report]["resource"]["status"]
    elif damage == "wrong-value-type":
        entries[observation]["resource"]["valueQuantity"] = "0.9"
    elif damage == "unknown-field":
        entries[report]["resource"]["colour"] = "red"
    elif damage == "unknown-bundle-field":
        bundle["colour"] = "red"
    elif damage == "r5-field":
        entries[report]["resource"]["note"] = [{"text": "x"}]
    elif damage == "instance-value-type":
        instances[2]["number"] = "two"
    elif damage == "instance-unknown-field":
        instances[1] = {**instances[1], "colour": "red"}
    elif damage == "instance-removed-field":
        del instances[3]["uid"]
    elif damage == "element-value-type":  # elements that validated before, changed
        entries[observation]["resource"]["code"]["coding"][0]["code"] = {"not": "a code"}
    elif damage == "element-unknown-field":
        entries[report]["resource"]["subject"]["colour"] = "red"
    elif damage == "element-null-in-list":
        entries[observation]["resource"]["category"].append(None)
    elif damage == "element-from-another-field":  # valid as Observation.code, not as subject
        entries[report]["resource"]["subject"] = entries[observation]["resource"]["code"]
    expected = _bundle_alone(bundle)
    assert (expected is None) == (damage in ("none", "no-resource"))
    if expected is None:
        validate_bundle(bundle)
        return
    with pytest.raises(PermanentError) as err:
        validate_bundle(bundle)
    assert err.value.reason == "invalid_fhir"
    assert str(err.value) == f"invalid_fhir: fields: {expected}"
