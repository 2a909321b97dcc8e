"""The study page's view of one report: its findings (scores, regions, rules) and the instance.

Everything here comes from FHIR (what the processor wrote); the patient header and the pixels
come from DICOMweb (images.py), only when a page asks for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imaging_pipeline.fhir.mapping import (
    DCM_SYSTEM,
    FINDING_CODE_SYSTEM,
    REGION_CODE,
    RULE_CODE_SYSTEM,
)
from imaging_pipeline.review.fhir_store import ReviewFhir, resources
from imaging_pipeline.review.review import version_of
from imaging_pipeline.review.worklist import Row, row_of

INTERPRETATION_PRIORITY = {"AA": "critical", "A": "urgent", "N": "routine"}


@dataclass(frozen=True)
class FindingView:
    kind: str
    description: str
    score: float
    priority: str
    rules: tuple[str, ...]
    box: tuple[float, float, float, float] | None
    status: str


@dataclass
class StudyView:
    row: Row
    version: str
    study_uid: str
    series_uid: str
    instance_uid: str
    findings: list[FindingView] = field(default_factory=list)
    report: Mapping[str, Any] = field(default_factory=dict)


def _box(text: str) -> tuple[float, float, float, float] | None:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        return None
    if len(values) != 4 or not all(0.0 <= v <= 1.0 for v in values):
        return None
    return values[0], values[1], values[2], values[3]


def finding_of(observation: Mapping[str, Any]) -> FindingView:
    code = observation.get("code", {})
    kind = next(
        (
            c.get("code", "")
            for c in code.get("coding", [])
            if c.get("system") == FINDING_CODE_SYSTEM
        ),
        "",
    )
    interpretation = (observation.get("interpretation") or [{}])[0].get("coding") or [{}]
    box = None
    rules = []
    for component in observation.get("component", []):
        coding = (component.get("code", {}).get("coding") or [{}])[0]
        if coding.get("system") == DCM_SYSTEM and coding.get("code") == REGION_CODE[0]:
            box = _box(str(component.get("valueString", "")))
        elif coding.get("system") == RULE_CODE_SYSTEM:
            rules.append(str(coding.get("code", "")))
    return FindingView(
        kind=str(kind),
        description=str(code.get("text", kind)),
        score=float(observation.get("valueQuantity", {}).get("value", 0.0)),
        priority=INTERPRETATION_PRIORITY.get(str(interpretation[0].get("code", "")), "routine"),
        rules=tuple(sorted(rules)),
        box=box,
        status=str(observation.get("status", "")),
    )


def _locate(study: Mapping[str, Any], instance_uid: str) -> tuple[str, str]:
    """(study UID, series UID) of the instance in an ImagingStudy."""
    study_uid = next(
        (
            str(i.get("value", "")).removeprefix("urn:oid:")
            for i in study.get("identifier", [])
            if str(i.get("value", "")).startswith("urn:oid:")
        ),
        "",
    )
    for series in study.get("series", []):
        if any(i.get("uid") == instance_uid for i in series.get("instance", [])):
            return study_uid, str(series.get("uid", ""))
    return study_uid, ""


def load_study(fhir: ReviewFhir, report_id: str) -> StudyView:
    report = fhir.read("DiagnosticReport", report_id)
    row = row_of(report)
    ids = [
        r.get("reference", "").split("/", 1)[-1]
        for r in report.get("result", [])
        if r.get("reference", "").startswith("Observation/")
    ]
    study_ref = (report.get("imagingStudy") or [{}])[0].get("reference", "")
    queries = []
    if ids:
        queries.append(("Observation", [("_id", ",".join(ids)), ("_count", str(len(ids)))]))
    if study_ref.startswith("ImagingStudy/"):
        queries.append(("ImagingStudy", [("_id", study_ref.split("/", 1)[1])]))
    bundles = fhir.search_many(queries)
    observations = [o for b in bundles for o in resources(b, "Observation")]
    studies = [s for b in bundles for s in resources(b, "ImagingStudy")]
    study_uid, series_uid = _locate(studies[0], row.instance_uid) if studies else ("", "")
    order = {i: n for n, i in enumerate(ids)}
    findings = [finding_of(o) for o in sorted(observations, key=lambda o: order.get(o["id"], 0))]
    return StudyView(
        row=row,
        version=version_of(report),
        study_uid=study_uid,
        series_uid=series_uid,
        instance_uid=row.instance_uid,
        findings=findings,
        report=report,
    )
