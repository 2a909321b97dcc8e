"""Read the findings back from one of our SRs (pydicom + highdicom): the inverse of `build`.

Used to prove the round trip (what the store returns says what the analyzer found) and by
anyone who wants our results from DICOM rather than FHIR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import highdicom as hd

from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.sr import codes

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from imaging_pipeline.settings import Priority
    from imaging_pipeline.sr.build import SourceImage

_WHOLE_IMAGE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ReportedFinding:
    finding: Finding
    priority: Priority
    rules: tuple[str, ...]


@dataclass(frozen=True)
class ReadReport:
    priority: Priority
    rules: tuple[str, ...]
    findings: tuple[ReportedFinding, ...]
    analyzer: tuple[str, str]  # name, version (TID 4019 of the first group, else the device)


def _texts(items: Dataset, concept: hd.sr.CodedConcept) -> list[str]:
    return [
        str(item.TextValue)
        for item in items.get("ContentSequence", [])
        if item.ValueType == "TEXT" and _is(item, concept)
    ]


def _is(item: Dataset, concept: hd.sr.CodedConcept) -> bool:
    name = item.ConceptNameCodeSequence[0]
    value = name.get("CodeValue") or name.get("LongCodeValue")
    return bool(value == concept.value and name.CodingSchemeDesignator == concept.scheme_designator)


def _priority(items: Dataset) -> Priority:
    for item in items.get("ContentSequence", []):
        if item.ValueType == "CODE" and _is(item, codes.PRIORITY):
            code = item.ConceptCodeSequence[0]
            return codes.PRIORITY_OF_VALUE[str(code.CodeValue)]
    raise ValueError("no Priority content item")


def _box(points: list[list[float]], image: SourceImage) -> tuple[float, float, float, float] | None:
    columns = [p[0] / image.columns for p in points]
    rows = [p[1] / image.rows for p in points]
    box = (min(columns), min(rows), max(columns), max(rows))
    if all(abs(a - b) < _WHOLE_IMAGE_TOLERANCE for a, b in zip(box, (0, 0, 1, 1), strict=True)):
        return None  # the whole frame: the finding had no box (see build._group)
    return box


def read_report(dataset: Dataset, image: SourceImage) -> ReadReport:
    """The findings, priorities and rules of an SR written by `build.build_sr`."""
    sr = hd.sr.Comprehensive3DSR.from_dataset(dataset, copy=False)
    root = sr.ContentSequence
    findings = []
    analyzer = ("", "")
    content: Any = sr.content  # a MeasurementReport for TID 1500 documents
    for group in content.get_planar_roi_measurement_groups():
        container = group[0]
        finding_type = group.finding_type
        kind = codes.KIND_OF_FINDING_TYPE[(finding_type.value, finding_type.scheme_designator)]
        score = float(group.get_measurements(name=codes.SCORE)[0].value)
        region = group.roi
        box = _box(region.value.tolist(), image) if region is not None else None
        (description,) = _texts(container, codes.FINDING_DESCRIPTION)
        findings.append(
            ReportedFinding(
                Finding(kind, description, score, box=box),
                _priority(container),
                tuple(_texts(container, codes.PRIORITY_RULE)),
            )
        )
        algorithm = [i for i in container.ContentSequence if i.ValueType == "TEXT"]
        names = {str(i.ConceptNameCodeSequence[0].CodeValue): str(i.TextValue) for i in algorithm}
        analyzer = analyzer if analyzer[0] else (names.get("111001", ""), names.get("111003", ""))
    evaluations = [
        item
        for item in root
        if item.ValueType == "CONTAINER" and _is(item, codes.QUALITATIVE_EVALUATIONS)
    ]
    if len(evaluations) != 1:
        raise ValueError("expected one Qualitative Evaluations container")
    if not analyzer[0]:
        model, version = dataset.get("ManufacturerModelName", ""), dataset.get("SoftwareVersions")
        analyzer = (str(model), str(version or ""))
    return ReadReport(
        priority=_priority(evaluations[0]),
        rules=tuple(_texts(evaluations[0], codes.PRIORITY_RULE)),
        findings=tuple(findings),
        analyzer=analyzer,
    )
