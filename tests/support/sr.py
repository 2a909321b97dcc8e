"""Findings of every kind the analyzers produce, and the source instances the SR tests use."""

from __future__ import annotations

from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.fhir.mapping import AnalyzerIdentity
from imaging_pipeline.rules import Assessment, assess
from imaging_pipeline.settings import PipelineSettings

ANALYZER = AnalyzerIdentity("imaging-pipeline-local-analyzer", "1.0+tesseract-5.3.0")
RULES = PipelineSettings.model_validate(
    {
        "rules": [
            {"name": "burned-in-text", "finding": "burned_in_text", "priority": "urgent"},
            {"name": "blank-image", "finding": "blank_image", "priority": "urgent"},
            {
                "name": "critical-words",
                "finding": "text",
                "terms": ["pneumothorax"],
                "priority": "critical",
            },
            {
                "name": "critical-labels",
                "finding": "label",
                "terms": ["fracture"],
                "priority": "critical",
            },
        ]
    }
).rules
# Every finding kind, with and without a box; the words are what must never reach the SR.
EVERY_KIND = (
    Finding(
        "burned_in_text",
        "burned-in text (3 words)",
        0.83,
        box=(0.1, 0.1, 0.5, 0.2),
        words=("stat", "pneumothorax", "zzyzx"),
    ),
    Finding("exposure", "underexposed", 0.7),
    Finding("exposure", "overexposed", 0.65),
    Finding("blank_image", "blank or uniform image", 0.99),
    Finding("label", "Fracture", 0.91),
    Finding("object", "Person", 0.77, box=(0.25, 0.3, 0.75, 0.9)),
    Finding("text", "PORTABLE", 0.88, box=(0.0, 0.0, 0.3, 0.05)),
)


def assessment_of(findings: tuple[Finding, ...] | list[Finding]) -> Assessment:
    return assess(findings, RULES)
