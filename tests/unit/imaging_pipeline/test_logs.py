"""Structured JSON logs: fields, trace context, and PHI scrubbing of every line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pydicom
import pytest
from imaging_pipeline import logs
from pydicom.data import get_testdata_file


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.process.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_json_with_fields_and_trace(captured: io.StringIO) -> None:
    logger = logging.getLogger("test.process.logs")
    trace = logs.parse_trace_header("00-" + "a" * 32 + "-" + "b" * 16 + "-01", None)
    with logs.event_context(trace, "proj"):
        logs.log_event(logger, logging.INFO, "done", outcome="processed", instance_uid="1.2")
    logs.log_event(logger, logging.INFO, "outside")
    inside, outside = lines(captured)
    assert inside["severity"] == "INFO" and inside["outcome"] == "processed"
    assert inside[logs.TRACE_KEY] == f"projects/proj/traces/{'a' * 32}"
    assert inside[logs.SPAN_KEY] == "b" * 16
    assert logs.TRACE_KEY not in outside


@pytest.mark.parametrize(
    ("traceparent", "cloud", "expected"),
    [
        (
            None,
            "0123456789abcdef0123456789ABCDEF/123;o=1",
            ("0123456789abcdef0123456789abcdef", format(123, "016x")),
        ),
        ("garbage", None, None),
        (None, None, None),
    ],
)
def test_trace_headers(
    traceparent: str | None, cloud: str | None, expected: tuple[str, str] | None
) -> None:
    assert logs.parse_trace_header(traceparent, cloud) == expected


def test_registered_phi_is_scrubbed_from_every_line(captured: io.StringIO) -> None:
    ds = pydicom.dcmread(str(get_testdata_file("MR_small.dcm")), stop_before_pixels=True)
    ds.PatientName = "Doe^Johnathan"
    ds.PatientID = "PID-778899"
    ds.PatientBirthDate = "19700101"
    logger = logging.getLogger("test.process.logs")
    with logs.event_context(None, "proj"):
        logs.register_dataset_phi(ds)
        logger.info("library said: patient DOE^JOHNATHAN id PID-778899 born 19700101")
        logs.log_event(logger, logging.INFO, "fields", detail="Johnathan Doe")
        try:
            raise ValueError("bad value 'Doe^Johnathan'")
        except ValueError:
            logger.exception("failed")
    with logs.event_context(None, "proj"):
        logger.info("next event: Johnathan")  # registrations do not leak into the next event
    text = captured.getvalue()
    for secret in ("Johnathan", "PID-778899", "19700101", "DOE"):
        assert secret not in text.split("next event")[0], secret
    assert text.count(logs.REDACTED) >= 5
    assert "next event: Johnathan" in text


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        logs.configure_logging("INFO", io.StringIO())
        logs.configure_logging("INFO", io.StringIO())
        added = [h for h in root.handlers if h not in before]
        assert len(added) <= 1
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
