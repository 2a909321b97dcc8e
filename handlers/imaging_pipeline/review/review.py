"""Accept or reject a report: one FHIR transaction, guarded by the version the reviewer saw.

    accept -> DiagnosticReport.status = final
    reject -> DiagnosticReport.status = entered-in-error (the AI result must not be used)
    both   -> a Provenance: target the report, the reviewer (IAP identity), the time, the
              decision and the optional comment (R4 DiagnosticReport has no note element)

The report is written with `ifMatch` on the version the reviewer's page showed, so of two
reviewers at once the second gets `ReviewConflictError` (and their form back, nothing lost) instead
of silently overwriting the first. Submitting the same decision again changes nothing
(idempotent): a double click, a retried request, a second reviewer agreeing.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from imaging_pipeline.fhir.mapping import validate_bundle
from imaging_pipeline.review.fhir_store import ReviewFhir, VersionConflictError, resources

Decision = Literal["accept", "reject"]
TARGET_STATUS: dict[str, str] = {"accept": "final", "reject": "entered-in-error"}
REVIEWER_SYSTEM = "urn:imaging-pipeline:reviewer"
PARTICIPANT_SYSTEM = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
MAX_COMMENT = 2000


@dataclass(frozen=True)
class LastReview:
    reviewer: str
    recorded: str
    decision: str
    comment: str


class ReviewConflictError(Exception):
    """The report changed since the reviewer opened it; `current` is what it is now."""

    def __init__(self, current: Mapping[str, Any], last: LastReview | None) -> None:
        super().__init__("the report changed since it was opened")
        self.current = current
        self.last = last

    def message(self) -> str:
        status = self.current.get("status", "?")
        if self.last:
            who = f"{self.last.decision} by {self.last.reviewer} at {self.last.recorded}"
        else:
            who = f"now {status}"
        return (
            f"Someone else reviewed this report while you had it open ({who}). "
            "Your review was not saved; your comment is kept below. "
            "Reload the report to see the current version, then review again."
        )


@dataclass(frozen=True)
class ReviewResult:
    saved: bool  # False: the report already had this decision; nothing was written
    report: Mapping[str, Any]


def version_of(resource: Mapping[str, Any]) -> str:
    return str(resource.get("meta", {}).get("versionId", ""))


def provenance(
    report_id: str, decision: Decision, reviewer: str, comment: str, recorded: str
) -> dict[str, Any]:
    participant = "verifier" if decision == "accept" else "author"
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": f"DiagnosticReport/{report_id}"}],
        "recorded": recorded,
        "activity": {
            "coding": [{"system": DATA_OPERATION_SYSTEM, "code": "UPDATE", "display": "revise"}],
            "text": f"review: {decision}",
        },
        "agent": [
            {
                "type": {"coding": [{"system": PARTICIPANT_SYSTEM, "code": participant}]},
                "who": {
                    "identifier": {"system": REVIEWER_SYSTEM, "value": reviewer},
                    "display": reviewer,
                },
            }
        ],
    }
    if comment:
        prov["reason"] = [{"text": comment}]
    return prov


def review_bundle(
    current: Mapping[str, Any],
    decision: Decision,
    reviewer: str,
    comment: str,
    recorded: str,
    seen_version: str,
) -> dict[str, Any]:
    """The transaction: the report with its new status (if-match), and the Provenance."""
    report = copy.deepcopy(dict(current))
    report.pop("meta", None)
    report.pop("text", None)
    report["status"] = TARGET_STATUS[decision]
    report_id = str(report["id"])
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": report,
                "request": {
                    "method": "PUT",
                    "url": f"DiagnosticReport/{report_id}",
                    "ifMatch": f'W/"{seen_version}"',
                },
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": provenance(report_id, decision, reviewer, comment, recorded),
                "request": {"method": "POST", "url": "Provenance"},
            },
        ],
    }


def last_review(fhir: ReviewFhir, report_id: str) -> LastReview | None:
    bundle = fhir.search(
        "Provenance",
        [("target", f"DiagnosticReport/{report_id}"), ("_sort", "-recorded"), ("_count", "1")],
    )
    found = resources(bundle, "Provenance")
    if not found:
        return None
    prov = found[0]
    agent = (prov.get("agent") or [{}])[0].get("who", {})
    reason = (prov.get("reason") or [{}])[0].get("text", "")
    return LastReview(
        reviewer=str(agent.get("display") or agent.get("identifier", {}).get("value", "?")),
        recorded=str(prov.get("recorded", "")),
        decision=str(prov.get("activity", {}).get("text", "")).removeprefix("review: "),
        comment=str(reason),
    )


def submit_review(
    fhir: ReviewFhir,
    report_id: str,
    *,
    seen_version: str,
    decision: Decision,
    reviewer: str,
    comment: str,
    recorded: str,
) -> ReviewResult:
    comment = comment.strip()[:MAX_COMMENT]
    current = fhir.read("DiagnosticReport", report_id)
    if current.get("status") == TARGET_STATUS[decision]:
        last = last_review(fhir, report_id)
        same = last is not None and last.reviewer == reviewer and last.comment == comment
        if not comment or same:
            return ReviewResult(False, current)  # already decided this way: idempotent
    if version_of(current) != seen_version:
        raise ReviewConflictError(current, last_review(fhir, report_id))
    bundle = review_bundle(current, decision, reviewer, comment, recorded, seen_version)
    validate_bundle(bundle)
    try:
        fhir.transaction(bundle)
    except VersionConflictError:
        current = fhir.read("DiagnosticReport", report_id)
        raise ReviewConflictError(current, last_review(fhir, report_id)) from None
    return ReviewResult(True, fhir.read("DiagnosticReport", report_id))
