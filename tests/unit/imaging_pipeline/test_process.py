"""`handle_event_data`: how outcomes are classified and logged, without any server.

The processor here is a stand-in whose `handle` raises what the real adapters raise; the
adapters themselves are exercised against real local servers in tests/integration.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pytest
from imaging_pipeline import logs
from imaging_pipeline.errors import PermanentError, TransientError
from imaging_pipeline.events import InstanceEvent
from imaging_pipeline.process import Outcome, handle_event_data
from imaging_pipeline.sr.build import SourceImage, build_sr
from imaging_pipeline.telemetry import Event

from tests.support.process import LOCAL_STORE, pubsub_message
from tests.support.render_fixtures import synthetic
from tests.support.sr import ANALYZER, EVERY_KIND, assessment_of

PATH = f"{LOCAL_STORE}/dicomWeb/studies/1.2/series/1.2.3/instances/1.2.3.4"


@dataclass
class _Config:
    project_id: str = "local-project"


class StubProcessor:
    def __init__(self, result: Outcome | Exception, phi: str | None = None) -> None:
        self.config = _Config()
        self.result = result
        self.phi = phi
        self.seen: list[InstanceEvent] = []

    def handle(self, event: InstanceEvent) -> Outcome:
        self.seen.append(event)
        if self.phi:
            logs.register_phi([self.phi])  # as the real one does after the retrieval
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("imaging_pipeline.process")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def run(processor: StubProcessor, data: Any) -> Outcome:
    return handle_event_data(cast(Any, processor), data, None)


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_processed_outcome_is_logged(log_lines: io.StringIO) -> None:
    processor = StubProcessor(Outcome("processed", priority="urgent", report="DiagnosticReport/1"))
    message = pubsub_message(PATH, message_id="m-1")
    assert run(processor, {"message": message}).status == "processed"
    [entry] = entries(log_lines)
    assert entry["event"] == Event.INSTANCE_PROCESSED and entry["outcome"] == "processed"
    assert entry["message_id"] == "m-1" and entry["instance_uid"] == "1.2.3.4"


@pytest.mark.parametrize(
    ("reason", "status", "severity", "event"),
    [
        ("unsupported_sop_class", "skipped", "INFO", Event.INSTANCE_SKIPPED),
        ("unrenderable", "failed", "WARNING", Event.INSTANCE_FAILED),
    ],
)
def test_permanent_errors_are_acknowledged(
    log_lines: io.StringIO, reason: Any, status: str, severity: str, event: str
) -> None:
    error = PermanentError(reason, "detail")
    error.modality = "CT"
    outcome = run(StubProcessor(error), {"message": pubsub_message(PATH)})
    assert (outcome.status, outcome.reason) == (status, reason)
    [entry] = entries(log_lines)
    assert (entry["outcome"], entry["reason"], entry["severity"]) == (status, reason, severity)
    assert (entry["event"], entry["modality"]) == (event, "CT")


def test_malformed_event_never_reaches_the_processor(log_lines: io.StringIO) -> None:
    processor = StubProcessor(Outcome("processed"))
    message = pubsub_message("garbage", message_id="m-2")
    assert run(processor, {"message": message}).reason == "malformed_event"
    assert processor.seen == []
    assert entries(log_lines)[0]["message_id"] == "m-2"


def test_transient_errors_propagate(log_lines: io.StringIO) -> None:
    processor = StubProcessor(TransientError("fhir", "HTTP 503 after 4 attempts"))
    with pytest.raises(TransientError):
        run(processor, {"message": pubsub_message(PATH)})
    [entry] = entries(log_lines)
    assert (entry["outcome"], entry["reason"], entry["severity"]) == (
        "retry",
        "fhir_unavailable",
        "ERROR",
    )
    assert entry["event"] == Event.INSTANCE_RETRY  # not counted as handled: it will come back


def test_unexpected_errors_are_retried_without_phi(log_lines: io.StringIO) -> None:
    processor = StubProcessor(ValueError("cannot parse Zzyzx^Quintessa"), phi="Zzyzx^Quintessa")
    with pytest.raises(TransientError) as err:
        run(processor, {"message": pubsub_message(PATH)})
    # What functions-framework logs: the type only, the original not chained for display.
    assert str(err.value) == "processor: unexpected ValueError"
    assert err.value.__suppress_context__
    text = log_lines.getvalue()
    assert "unexpected_error" in text and "Zzyzx" not in text and "Quintessa" not in text


def test_building_an_sr_logs_nothing_at_info() -> None:
    """highdicom's per-SR INFO lines (one naming the source's SOP Instance UID) are off in the
    processor; its warnings are not."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        source = synthetic(np.zeros((8, 8), dtype=np.uint16), Modality="CT")
        source.StudyInstanceUID, source.SeriesInstanceUID = "1.2.3", "1.2.3.4"
        build_sr(source, SourceImage(8, 8), EVERY_KIND, assessment_of(EVERY_KIND), ANALYZER)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert logging.getLogger("highdicom").getEffectiveLevel() == logging.WARNING
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == []
