"""Structured JSON logs for Cloud Logging, PHI-safe by construction, with trace context.

Each line is one JSON object on stdout; Cloud Logging reads `severity`, `message` and
`logging.googleapis.com/trace` from it, and the log-based metrics filter on `event` and
`outcome`. Two rules keep PHI out:

- Structured fields come from an allow-list (`telemetry.LOG_FIELDS`): UIDs, codes, references,
  numbers and findings, each checked for its shape; anything else is dropped (its name is listed
  in `dropped_fields`), a value of the wrong shape becomes "[invalid]". They are never rewritten.
- Free text (the message, `detail`, exception tracebacks, library and `warnings` messages) goes
  through a scrubber that replaces the values of the current instance's patient attributes
  (registered per event) where they occur as whole tokens: a PHI value "3090" redacts the house
  number in "3090 Main Street" but not the digits inside a UID or a duration.

Scrubbing happens on values before serialization, so every line is valid JSON.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from imaging_pipeline.telemetry import LOG_FIELDS, FieldKind

REDACTED = "[redacted]"
INVALID = "[invalid]"
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
# A PHI value matches as a whole token only: not inside a longer run of letters and digits, and a
# value starting or ending with a digit not as part of a dotted number ("1.2.3090.4", "1090.2"),
# so UIDs and numbers stay intact.
_WHOLE_START = r"(?<![^\W_])(?:(?<!\d\.)|(?=\D))"
_WHOLE_END = r"(?![^\W_])(?:(?!\.\d)|(?<=\D))"
_UID = re.compile(r"[0-9]{1,64}(?:\.[0-9]{1,64}){0,63}")
_CODE = re.compile(r"[A-Za-z0-9_.:+-]{1,64}")
_REFERENCE = re.compile(r"[A-Za-z0-9_.:/~%+=@-]{1,512}")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_FINDING_KEYS = {
    "kind": FieldKind.CODE,
    "rule": FieldKind.CODE,
    "score": FieldKind.NUMBER,
    "description": FieldKind.TEXT,  # a label or fixed phrase, never OCR text; scrubbed anyway
}

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
        choice = "|".join(re.escape(v) for v in ordered)
        _phi_pattern.set(re.compile(f"{_WHOLE_START}(?:{choice}){_WHOLE_END}", re.IGNORECASE))


def register_dataset_phi(dataset: Any) -> None:
    """Register the patient attributes of a pydicom Dataset (read without decoding pixels)."""
    register_phi(dataset.get(keyword) for keyword in PHI_KEYWORDS if keyword in dataset)


def scrub(text: str) -> str:
    """Replace every registered PHI value that occurs in `text` as a whole token."""
    pattern = _phi_pattern.get()
    return pattern.sub(REDACTED, text) if pattern else text


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return INVALID


def _matching(pattern: re.Pattern[str], value: Any) -> str:
    text = str(value)
    return text if pattern.fullmatch(text) else INVALID


def _finding(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return INVALID
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "box" and isinstance(item, list | tuple):
            out[key] = [_number(v) for v in item]
        elif key in _FINDING_KEYS:
            out[key] = checked_value(_FINDING_KEYS[key], item)
    return out


def checked_value(kind: FieldKind, value: Any) -> Any:
    """The value as written for an allow-listed field of `kind` (see the module docstring)."""
    if value is None:
        return None
    if kind is FieldKind.NUMBER:
        return _number(value)
    if kind is FieldKind.UID:
        return _matching(_UID, value)
    if kind is FieldKind.CODE:
        return _matching(_CODE, value)
    if kind is FieldKind.REFERENCE:
        return _matching(_REFERENCE, value)
    if kind is FieldKind.FINDINGS:
        if isinstance(value, list | tuple):
            return [_finding(v) for v in value]
        return _finding(value)
    return scrub(str(value))


def structured_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Allow-listed fields with checked values; other names go to `dropped_fields`."""
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in fields.items():
        kind = LOG_FIELDS.get(key)
        if kind is None:
            dropped.append(key if _FIELD_NAME.fullmatch(str(key)) else INVALID)
        elif value is not None:
            out[key] = checked_value(kind, value)
    if dropped:
        out["dropped_fields"] = sorted(dropped)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per record: severity, message, structured fields, trace context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": scrub(record.getMessage()),
            "logger": record.name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(structured_fields(fields))
        trace = _trace.get()
        if trace:
            entry[TRACE_KEY] = trace[0]
            if trace[1]:
                entry[SPAN_KEY] = trace[1]
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route every logger (ours and libraries') and `warnings` through one JSON handler.

    Idempotent. `warnings.warn` (pydicom's warnings about odd files) becomes a `py.warnings`
    record instead of raw text on stderr; Flask's own stderr handler is never attached to the
    app logger, because a root handler exists before functions-framework first logs a traceback.
    """
    root = logging.getLogger()
    root.setLevel(level)
    logging.captureWarnings(True)
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)


@contextmanager
def messages_on_this_thread(logger_name: str) -> Iterator[list[str]]:
    """The messages `logger_name` logs at WARNING or above from this thread while the block
    runs (pydicom's logger is at WARNING unless someone raises it).

    pydicom says that a file ends inside a sequence or encapsulated pixel data only with a
    warning, which it also logs. `warnings.catch_warnings(record=True)` swaps the process-wide
    filters and recorder: with concurrent callers (`imaging ingest`'s workers) threads recorded
    each other's warnings or none, so a truncated file could pass and a whole one be rejected.
    A handler that keeps only its own thread's records is safe."""
    messages: list[str] = []
    handler = _ThreadMessages(threading.get_ident(), messages)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


class _ThreadMessages(logging.Handler):
    def __init__(self, thread: int, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self._thread = thread
        self._messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread:
            self._messages.append(record.getMessage())


def log_event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log `message` (free text, scrubbed) with allow-listed structured `fields`."""
    logger.log(level, message, extra={"fields": fields})
