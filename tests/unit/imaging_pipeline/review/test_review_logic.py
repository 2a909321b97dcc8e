"""The review app's pure logic: worklist paging plan, rows, findings, review bundle, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from imaging_pipeline.adapters.dead_letters import DeadLetter
from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.fhir.mapping import (
    AnalyzerIdentity,
    InstanceInfo,
    build_transaction,
    validate_bundle,
)
from imaging_pipeline.review.images import header_from_json, with_window
from imaging_pipeline.review.operations import count_outcomes, first_failures
from imaging_pipeline.review.review import review_bundle
from imaging_pipeline.review.study import finding_of
from imaging_pipeline.review.worklist import Row, WorklistQuery, build_page, row_of
from imaging_pipeline.rules import assess
from imaging_pipeline.settings import Rule

INFO = InstanceInfo(
    study_uid="1.2.3",
    series_uid="1.2.3.4",
    instance_uid="1.2.3.4.5",
    sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
    modality="CT",
    patient_id="P1",
)
RULES = (
    Rule(name="fracture-terms", finding="label", terms=("fracture",), priority="critical"),
    Rule(name="any-object", finding="object", terms=("nodule",), min_score=0.1, priority="urgent"),
)


def _bundle() -> dict:
    findings = [
        Finding("label", "fracture", 0.9),
        Finding("object", "nodule", 0.4, box=(0.1, 0.2, 0.3, 0.5)),
    ]
    return build_transaction(
        INFO,
        findings,
        assess(findings, RULES),
        AnalyzerIdentity("local-analyzer", "1.0"),
        patient_system="urn:test:patients",
        issued="2026-12-01T10:00:00+00:00",
    )


def _of(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _row(
    report_id: str, priority: str, issued: str, modality: str = "CT", review: str = "unreviewed"
) -> Row:
    return Row(report_id, priority, modality, review, issued, "1.2", "")


ROWS = [
    _row("r1", "routine", "2026-12-01T08:00:00Z"),
    _row("c2", "critical", "2026-12-01T09:00:00Z"),
    _row("u1", "urgent", "2026-12-01T07:00:00Z", modality="MR"),
    _row("c1", "critical", "2026-12-01T06:00:00Z", review="accepted"),
    _row("r2", "routine", "2026-12-01T05:00:00Z"),
]


def test_page_is_priority_then_oldest_first_with_counts() -> None:
    page = build_page(ROWS, WorklistQuery())
    assert [r.report_id for r in page.rows] == ["c1", "c2", "u1", "r2", "r1"]
    assert page.counts == {"critical": 2, "urgent": 1, "routine": 2}
    newest = build_page(ROWS, WorklistQuery(newest_first=True))
    assert [r.report_id for r in newest.rows] == ["c2", "c1", "u1", "r1", "r2"]


def test_filters_and_paging() -> None:
    second = build_page(ROWS, WorklistQuery(page=2, page_size=2))
    assert [r.report_id for r in second.rows] == ["u1", "r2"] and second.pages == 3
    ct_unreviewed = build_page(ROWS, WorklistQuery(modality="CT", review="unreviewed"))
    assert [r.report_id for r in ct_unreviewed.rows] == ["c2", "r2", "r1"]
    assert ct_unreviewed.counts == {"critical": 1, "urgent": 0, "routine": 2}
    critical = build_page(ROWS, WorklistQuery(priority="critical"))
    assert [r.report_id for r in critical.rows] == ["c1", "c2"] and critical.total == 2
    # Counts stay per priority (they are the priority filter's links).
    assert critical.counts["routine"] == 2


def test_query_from_arguments_ignores_what_it_does_not_know() -> None:
    query = WorklistQuery.from_args(
        {"priority": "urgent", "modality": "CT", "review": "bogus", "page": "-3", "size": "9999"}
    )
    assert (query.priority, query.modality, query.review, query.page) == ("urgent", "CT", None, 1)
    assert query.page_size == 100
    assert query.args(page=3) == {"priority": "urgent", "modality": "CT", "page": "3"}


def test_processor_reports_carry_what_the_worklist_searches_and_shows() -> None:
    bundle = _bundle()
    validate_bundle(bundle)  # still valid R4 with the added conclusionCode and components
    report = {**_of(bundle, "DiagnosticReport")[0], "id": "r1"}
    row = row_of(report)
    assert (row.priority, row.modality, row.review) == ("critical", "CT", "unreviewed")
    assert row.instance_uid == INFO.instance_uid
    fracture, nodule = (finding_of(o) for o in _of(bundle, "Observation"))
    assert fracture.rules == ("fracture-terms",) and fracture.priority == "critical"
    assert fracture.box is None
    assert nodule.rules == ("any-object",) and nodule.priority == "urgent"
    assert nodule.box == (0.1, 0.2, 0.3, 0.5)


def test_review_bundle_sets_status_if_match_and_names_the_reviewer() -> None:
    report = {**_of(_bundle(), "DiagnosticReport")[0], "id": "r1", "meta": {"versionId": "4"}}
    bundle = review_bundle(
        report, "reject", "dr.a@example.org", "wrong side", "2026-12-01T11:00:00Z", "4"
    )
    validate_bundle(bundle)
    put, prov = (e for e in bundle["entry"])
    assert put["request"] == {"method": "PUT", "url": "DiagnosticReport/r1", "ifMatch": 'W/"4"'}
    assert put["resource"]["status"] == "entered-in-error" and "meta" not in put["resource"]
    assert prov["resource"]["target"] == [{"reference": "DiagnosticReport/r1"}]
    assert prov["resource"]["agent"][0]["who"]["display"] == "dr.a@example.org"
    assert prov["resource"]["recorded"] == "2026-12-01T11:00:00Z"
    assert prov["resource"]["reason"] == [{"text": "wrong side"}]


def test_outcome_counts_cover_the_last_day_by_reason() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    recent = (now - timedelta(hours=2)).isoformat()
    old = (now - timedelta(days=2)).isoformat()
    entries = [
        {"event": "instance_processed", "time": recent},
        {"event": "instance_processed", "time": recent},
        {"event": "instance_skipped", "reason": "unsupported_sop_class", "time": recent},
        {"event": "instance_failed", "reason": "invalid_dicom", "time": recent},
        {"event": "instance_failed", "reason": "invalid_dicom", "time": old},
        {"event": "instance_retry", "reason": "fhir_unavailable", "time": recent},
    ]
    counts = [(c.outcome, c.reason, c.count) for c in count_outcomes(entries, now)]
    assert counts == [
        ("processed", "-", 2),
        ("skipped", "unsupported_sop_class", 1),
        ("failed", "invalid_dicom", 1),
    ]
    retries = [
        {"instance_uid": "9.9", "outcome": "retry", "reason": "fhir_unavailable"},
        {"instance_uid": "9.9", "outcome": "retry", "reason": "later"},
    ]
    assert first_failures(retries, ["9.9", "8.8"]) == {"9.9": "fhir_unavailable"}


def test_dead_letter_keeps_original_attributes_only() -> None:
    letter = DeadLetter(
        "m1",
        "projects/p/locations/l/datasets/d/dicomStores/s/dicomWeb/studies/1/series/2/instances/3.4",
        {"action": "StoreInstances", "CloudPubSubDeadLetterSourceDeliveryCount": "5"},
        "",
    )
    assert letter.attempts == 5 and letter.instance_uid == "3.4"
    assert letter.original_attributes == {"action": "StoreInstances"}


def test_window_preset_replaces_every_declared_voi() -> None:
    from pydicom import examples

    ds = examples.ct
    windowed = with_window(ds, -600.0, 1500.0)
    assert (float(windowed.WindowCenter), float(windowed.WindowWidth)) == (-600.0, 1500.0)
    assert windowed.VOILUTFunction == "LINEAR" and "VOILUTSequence" not in windowed
    assert ds.get("WindowCenter") != windowed.WindowCenter  # the original is untouched


def test_patient_header_from_dicom_json() -> None:
    header = header_from_json(
        {
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
            "00100020": {"vr": "LO", "Value": ["P-77"]},
            "00080050": {"vr": "SH"},
        }
    )
    assert (header.name, header.patient_id, header.accession) == ("Doe Jane", "P-77", "")
