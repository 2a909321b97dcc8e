"""Structured JSON logs: fields, trace context, and PHI scrubbing of every line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from imaging_pipeline import logs
from pydicom.data import get_testdata_file

HANDLERS = Path(__file__).resolve().parents[3] / "handlers"


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


# --- logging by construction -------------------------------------------------------------------
# The two failures of the old after-the-fact scrubber, which redacted every 3+ character fragment
# of a PHI value anywhere in the serialized line: a patient address containing "3090" cut a
# Series UID apart, an institution address containing "1090" turned a duration into invalid JSON.
SERIES_UID = "1.3.12.2.1107.5.2.32.35162.2012102409443090534923"


def _dataset_with_addresses() -> pydicom.Dataset:
    ds = pydicom.dcmread(str(get_testdata_file("MR_small.dcm")), stop_before_pixels=True)
    ds.PatientName = "Doe^Johnathan"
    ds.PatientAddress = "3090 Maple Road"
    ds.InstitutionAddress = "1090 Vienna"
    ds.SeriesInstanceUID = SERIES_UID
    return ds


def test_uids_and_numbers_survive_phi_that_shares_their_digits(captured: io.StringIO) -> None:
    logger = logging.getLogger("test.process.logs")
    with logs.event_context(None, "proj"):
        logs.register_dataset_phi(_dataset_with_addresses())
        logs.log_event(
            logger,
            logging.INFO,
            f"retrieved series {SERIES_UID} in 1090.2 ms from 3090 Maple Road",
            event="instance_processed",
            series_uid=SERIES_UID,
            duration_ms=1090.2,
            fhir_created=3090,
            message_id="13090555",
            detail="patient at 3090 Maple Road, Doe^Johnathan; took 1090.2 ms",
        )
    raw = captured.getvalue().splitlines()
    [entry] = [json.loads(line) for line in raw]  # every line is JSON
    assert entry["series_uid"] == SERIES_UID
    assert entry["duration_ms"] == 1090.2 and entry["fhir_created"] == 3090
    assert entry["message_id"] == "13090555"
    # Free text: the UID and the duration intact, the address and the name redacted.
    assert entry["message"] == f"retrieved series {SERIES_UID} in 1090.2 ms from [redacted]"
    assert "3090 Maple" not in entry["detail"] and "Johnathan" not in entry["detail"]
    assert "took 1090.2 ms" in entry["detail"]


def test_structured_fields_come_from_the_allow_list(captured: io.StringIO) -> None:
    logger = logging.getLogger("test.process.logs")
    logs.log_event(
        logger,
        logging.INFO,
        "fields",
        patient_name="Doe^Johnathan",  # not an allowed field: dropped, only its name listed
        instance_uid="Doe^Johnathan",  # allowed, but not a UID: never written as given
        modality="CT",
        priority="critical urgent",  # a code has no spaces
    )
    [entry] = lines(captured)
    assert "Johnathan" not in json.dumps(entry)
    assert entry["dropped_fields"] == ["patient_name"]
    assert entry["instance_uid"] == logs.INVALID and entry["priority"] == logs.INVALID
    assert entry["modality"] == "CT"


def test_whole_tokens_only() -> None:
    with logs.event_context(None, "proj"):
        logs.register_phi(["Doe^Johnathan", "3090"])
        assert logs.scrub("Johnathan's file JOHNATHAN_DOE.dcm") == (
            "[redacted]'s file [redacted]_[redacted].dcm"
        )
        assert logs.scrub("1.2.3090.4 and 13090 and 3090.5 and 3090") == (
            "1.2.3090.4 and 13090 and 3090.5 and [redacted]"
        )


def _run_json_logged(script: str) -> tuple[list[str], str]:
    """Run `script` in a fresh interpreter with the function's logging; (stdout lines, stderr)."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=HANDLERS,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines(), result.stderr


def test_library_warnings_and_tracebacks_go_through_the_logger() -> None:
    """pydicom's warnings and Flask's traceback of a failing function: JSON lines, scrubbed."""
    stdout, stderr = _run_json_logged(
        """
import io, logging, warnings
import main  # the deployed entry points: configures the JSON logging at import
import functions_framework, pydicom
from imaging_pipeline import logs
from pydicom.data import get_testdata_file
warnings.simplefilter("always")
ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"), stop_before_pixels=True)
with logs.event_context(None, "proj"):
    logs.register_phi(["Johnathan"])
    ds.SOPInstanceUID = "1.2.Johnathan"  # pydicom warns: invalid value for VR UI
app = functions_framework.create_app("ingest_dicom_object", "main.py", "cloudevent")
response = app.test_client().post(
    "/", json={"bucket": "b", "name": "incoming/x.dcm", "generation": "1"},
    headers={"ce-id": "1", "ce-specversion": "1.0", "ce-source": "//storage", "ce-type":
    "google.cloud.storage.object.v1.finalized"},
)
assert response.status_code == 500, response.status_code  # no DICOMWEB_URL etc.: it raises
"""
    )
    entries = [json.loads(line) for line in stdout]  # every line is JSON
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    warned = [e for e in entries if e["logger"] == "py.warnings"]
    assert warned and "Johnathan" not in warned[0]["message"]
    failed = [e for e in entries if "exception" in e]
    assert failed and "ConfigurationError" in failed[0]["exception"]


def test_messages_on_this_thread_keeps_only_this_threads_records() -> None:
    logger = logging.getLogger("test_logs.thread_messages")
    logger.setLevel(logging.INFO)
    other = threading.Thread(target=lambda: logger.warning("from another thread"))
    handlers = list(logger.handlers)
    with logs.messages_on_this_thread(logger.name) as messages:
        logger.info("below warning")
        logger.warning("mine %d", 1)
        other.start()
        other.join()
        logger.error("mine too")
    logger.warning("after the block")
    assert messages == ["mine 1", "mine too"]
    assert logger.handlers == handlers
