"""Structured JSON logs for Cloud Logging, with trace context and PHI scrubbing.

Each line is one JSON object on stdout; Cloud Logging reads `severity`, `message` and
`logging.googleapis.com/trace` from it, and the log-based metrics filter on `event` and
`outcome`. PHI never reaches a line by construction (we log UIDs and reason codes only); as a
second line of defence, the values of the current instance's patient attributes are registered
per event and replaced in every formatted line, including third-party library messages and
exception text.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

REDACTED = "[redacted]"
TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
# DICOM keywords whose values identify a patient (a subset of PS3.15 Annex E that this pipeline
# could ever see in a message, exception or library log).
PHI_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "IssuerOfPatientID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "InstitutionName",
    "InstitutionAddress",
    "StudyID",
)
_MIN_PHI_LENGTH = 3  # shorter fragments (initials, "M") would redact ordinary words

_trace: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "trace", default=None
)
_phi: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("phi", default=())
_phi_pattern: contextvars.ContextVar[re.Pattern[str] | None] = contextvars.ContextVar(
    "phi_pattern", default=None
)


def parse_trace_header(traceparent: str | None, cloud_trace: str | None) -> tuple[str, str] | None:
    """(trace id, span id) from a W3C `traceparent` or a `X-Cloud-Trace-Context` header."""
    if traceparent:
        match = re.fullmatch(
            r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}", traceparent.strip()
        )
        if match:
            return match.group(1), match.group(2)
    if cloud_trace:
        match = re.fullmatch(r"([0-9a-fA-F]{32})(?:/(\d+))?(?:;o=\d)?", cloud_trace.strip())
        if match:
            span = format(int(match.group(2)), "016x") if match.group(2) else ""
            return match.group(1).lower(), span
    return None


@contextmanager
def event_context(trace: tuple[str, str] | None, project_id: str) -> Iterator[None]:
    """Scope the trace of one event; PHI values registered inside are dropped at the end."""
    value = (f"projects/{project_id}/traces/{trace[0]}", trace[1]) if trace else None
    tokens = (_trace.set(value), _phi.set(()), _phi_pattern.set(None))
    try:
        yield
    finally:
        _trace.reset(tokens[0])
        _phi.reset(tokens[1])
        _phi_pattern.reset(tokens[2])


def _phi_strings(value: Any) -> Iterable[str]:
    if value is None:
        return
    if isinstance(value, str | bytes):
        text = value.decode(errors="ignore") if isinstance(value, bytes) else value
    elif isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        for item in value:
            yield from _phi_strings(item)
        return
    else:
        text = str(value)
    text = text.strip()
    if len(text) >= _MIN_PHI_LENGTH:
        yield text
    # Person names: "Family^Given^Middle" also appear as their parts ("Given Family").
    for part in re.split(r"[\^=\s,]+", text):
        if len(part) >= _MIN_PHI_LENGTH:
            yield part


def register_phi(values: Iterable[Any]) -> None:
    """Add values that must never appear in a log line during the current event."""
    found = set(_phi.get())
    for value in values:
        found.update(_phi_strings(value))
    if found:
        ordered = tuple(sorted(found, key=len, reverse=True))  # longest first: whole names win
        _phi.set(ordered)
        _phi_pattern.set(re.compile("|".join(re.escape(v) for v in ordered), re.IGNORECASE))


def register_dataset_phi(dataset: Any) -> None:
    """Register the patient attributes of a pydicom Dataset (read without decoding pixels)."""
    register_phi(dataset.get(keyword) for keyword in PHI_KEYWORDS if keyword in dataset)


def scrub(text: str) -> str:
    pattern = _phi_pattern.get()
    return pattern.sub(REDACTED, text) if pattern else text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: severity, message, structured fields, trace context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(fields)
        trace = _trace.get()
        if trace:
            entry[TRACE_KEY] = trace[0]
            if trace[1]:
                entry[SPAN_KEY] = trace[1]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route every logger (ours and libraries') through one JSON handler; idempotent."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)


def log_event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log `message` with structured `fields` (UIDs, outcome, reason; never PHI)."""
    logger.log(level, message, extra={"fields": fields})
