"""The telemetry contract of both functions: event names, outcomes, reason codes, log fields and
the log-based metrics built on them. snake_case throughout.

The functions write these names (`process`, `critical_findings`, `ingest`), the infrastructure
filters and labels on them (`modules/observability.py`: metrics, alert policies, dashboard) and
the tests assert them: all three import this module, so a renamed event cannot silently blind an
alert. Nothing here imports more than the standard library (the cold start and `cdktf synth`
both load it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, get_args


class Event(StrEnum):
    """`jsonPayload.event` of a log line: what happened (one per finished unit of work)."""

    INSTANCE_PROCESSED = "instance_processed"
    INSTANCE_SKIPPED = "instance_skipped"  # expected: not an image we analyze
    INSTANCE_FAILED = "instance_failed"  # permanent: bad input, acknowledged
    INSTANCE_RETRY = "instance_retry"  # transient: Pub/Sub redelivers, not counted as handled
    CRITICAL_FINDING = "critical_finding"
    # The SR could not be built or the store refused it: FHIR and alerts still went out.
    STRUCTURED_REPORT_NOT_STORED = "structured_report_not_stored"
    INGEST = "ingest"  # one staging object (outcome says how it ended)


class Outcome(StrEnum):
    """`jsonPayload.outcome`."""

    PROCESSED = "processed"
    SKIPPED = "skipped"
    IGNORED = "ignored"  # not for us (another action, bucket or prefix); nothing to count
    FAILED = "failed"
    RETRY = "retry"
    GONE = "gone"  # ingest: an earlier delivery already moved the object


# Permanent reasons of the processor: the input is bad or unsupported; acknowledged and counted.
PermanentReason = Literal[
    "malformed_event",  # the push body is not a DICOM store notification
    "foreign_store",  # the instance lives in a store this processor is not configured for
    "not_a_new_instance",  # an action other than StoreInstances/ImportDicomData
    "not_found",  # the instance was deleted before we fetched it (404/410)
    "unsupported_sop_class",  # SR, SEG, PR, KO, PDF, RT...: nothing to render
    "unsupported_modality",  # modality outside the configured allow-list
    "not_analyzed",  # the modality's route is `none` (by configuration: nothing to pay for)
    "unrenderable",  # the rendering core rejected the pixel data
    "invalid_dicom",  # the server returned something that is not a readable DICOM instance
    "rejected_by_server",  # a 4xx other than 408/429 from a dependency: our request is wrong
    "invalid_fhir",  # a resource we built failed FHIR validation (a bug; never send it)
]
PERMANENT_REASONS: Final = frozenset(get_args(PermanentReason))
# Skips are expected outcomes (we never analyze our own SR outputs, nor other modalities); the
# other permanent reasons mean bad input and count as failures.
SKIP_REASONS: Final = frozenset({"unsupported_sop_class", "unsupported_modality", "not_analyzed"})
IGNORE_REASONS: Final = frozenset({"not_a_new_instance"})

# Transient reasons: `<dependency>_unavailable`, plus these two.
Dependency = Literal["dicomweb", "fhir", "pubsub", "vision", "processor"]
DEPENDENCIES: Final = frozenset(get_args(Dependency))
UNEXPECTED_ERROR: Final = "unexpected_error"
CONFIGURATION_ERROR: Final = "configuration_error"


def transient_reason(dependency: str) -> str:
    return f"{dependency}_unavailable"


TRANSIENT_REASONS: Final = frozenset(
    {transient_reason(d) for d in DEPENDENCIES} | {UNEXPECTED_ERROR, CONFIGURATION_ERROR}
)

# Why the ingest function moved an object to failed/ (also written into the object's metadata).
IngestFailure = Literal["not_dicom", "corrupt", "rejected_by_store"]
INGEST_FAILURES: Final = frozenset(get_args(IngestFailure))
StowOutcome = Literal["stored", "already_present"]

SNAKE_CASE: Final = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


# --- log fields --------------------------------------------------------------------------------
class FieldKind(StrEnum):
    """How a structured field's value is checked before it is written (see `logs`)."""

    UID = "uid"  # a DICOM UID: digits and dots
    CODE = "code"  # a name from this contract or the code: a short token, no spaces
    NUMBER = "number"
    REFERENCE = "reference"  # a resource path or id: FHIR `Type/id`, `projects/...`, message ids
    FINDINGS = "findings"  # Finding.as_dict() items: kind, description (a label), score, box
    TEXT = "text"  # free text (exception details, object names): scrubbed for PHI


LOG_FIELDS: Final[dict[str, FieldKind]] = {
    "event": FieldKind.CODE,
    "outcome": FieldKind.CODE,
    "reason": FieldKind.CODE,
    "priority": FieldKind.CODE,
    "modality": FieldKind.CODE,
    "environment": FieldKind.CODE,
    "dependency": FieldKind.CODE,
    "event_type": FieldKind.CODE,
    "stow": FieldKind.CODE,
    "rule": FieldKind.CODE,
    "analyzer": FieldKind.CODE,
    "version": FieldKind.CODE,
    "study_uid": FieldKind.UID,
    "series_uid": FieldKind.UID,
    "instance_uid": FieldKind.UID,
    "sop_instance_uid": FieldKind.UID,
    "message_id": FieldKind.REFERENCE,
    "alert_message_id": FieldKind.REFERENCE,
    "report": FieldKind.REFERENCE,
    "dedupe_key": FieldKind.REFERENCE,
    "bucket": FieldKind.REFERENCE,
    "subscription": FieldKind.REFERENCE,
    "duration_ms": FieldKind.NUMBER,
    "fhir_created": FieldKind.NUMBER,
    "generation": FieldKind.NUMBER,
    "attempt": FieldKind.NUMBER,
    "status": FieldKind.NUMBER,
    "finding": FieldKind.FINDINGS,
    "findings": FieldKind.FINDINGS,
    "detail": FieldKind.TEXT,
    "object": FieldKind.TEXT,  # uploaders name files; a name may be a patient's
    "destination": FieldKind.TEXT,
    # The review app: one access line per request (paths hold ids and UIDs, never names), its
    # worklist index and dead-letter replays.
    "method": FieldKind.CODE,
    "route": FieldKind.CODE,  # the Flask endpoint name, e.g. `study`
    "path": FieldKind.REFERENCE,
    "auth_failure": FieldKind.CODE,
    "reports": FieldKind.NUMBER,
    "replayed": FieldKind.NUMBER,
    "failed": FieldKind.NUMBER,
}


# --- log-based metrics -------------------------------------------------------------------------
MetricLabel = Literal["modality", "reason", "priority"]


@dataclass(frozen=True)
class EventMetric:
    """A counter of the processor's log lines whose `event` is one of `events`."""

    key: str
    events: tuple[Event, ...]
    description: str
    labels: tuple[MetricLabel, ...]


HANDLED_EVENTS: Final = (Event.INSTANCE_PROCESSED, Event.INSTANCE_SKIPPED, Event.INSTANCE_FAILED)
EVENT_METRICS: Final = (
    EventMetric(
        "processed",
        (Event.INSTANCE_PROCESSED,),
        "DICOM instances analyzed and recorded.",
        ("modality",),
    ),
    EventMetric(
        "skipped",
        (Event.INSTANCE_SKIPPED,),
        "Instances not analyzed, by reason code.",
        ("modality", "reason"),
    ),
    EventMetric(
        "failed",
        (Event.INSTANCE_FAILED,),
        "Instances that failed, by reason code.",
        ("modality", "reason"),
    ),
    EventMetric(
        "critical_findings",
        (Event.CRITICAL_FINDING,),
        "Findings of critical priority.",
        ("modality", "priority"),
    ),
    EventMetric(
        "handled",
        HANDLED_EVENTS,
        "Every instance the processor finished with (the failure ratio's denominator).",
        (),
    ),
)
