"""The processor's HTTP contract: every body Pub/Sub can push gets a typed outcome.

functions-framework serves the deployed entry point in process (`create_app(...).test_client()`)
with a real `Processor` whose DICOMweb port is a stand-in: 200 and one log line for a permanent
reason, 500 only for a transient failure.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import functions_framework
import pydicom
import pytest
from imaging_pipeline import logs, process_entry
from imaging_pipeline.errors import TransientError
from imaging_pipeline.process import Processor
from imaging_pipeline.runtime_env import ProcessorConfig
from imaging_pipeline.settings import PipelineSettings
from imaging_pipeline.telemetry import Event, Outcome
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from tests.support.process import (
    ALERTS_TOPIC,
    LOCAL_STORE,
    cloud_event_headers,
    pubsub_message,
    push_envelope,
    structured_cloud_event,
)

MAIN = Path(__file__).resolve().parents[3] / "handlers" / "main.py"
PATH = f"{LOCAL_STORE}/dicomWeb/studies/1.2/series/1.2.3/instances/1.2.3.4"


class StandInDicomweb:
    """Answers WADO-RS retrieves with `answer` (a Dataset, or an exception to raise)."""

    def __init__(self, answer: Dataset | Exception) -> None:
        self.answer = answer
        self.calls = 0

    def retrieve_instance(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: tuple[tuple[str, str], ...] | None = None,
    ) -> Dataset:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Unused:
    """Analyzer and FHIR ports: none of these bodies gets that far."""

    name = "unused"
    version = "0"

    def __getattr__(self, item: str) -> Any:
        raise AssertionError(f"unexpected call: {item}")


def structured_report() -> Dataset:
    ds = pydicom.dcmread(str(get_testdata_file("MR_small.dcm")), stop_before_pixels=True)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR: nothing to render
    ds.SOPInstanceUID = "1.2.3.4"
    return ds


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """`serve(dicomweb_answer)` -> a test client of the deployed entry point."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("imaging_pipeline.process")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def make(answer: Dataset | Exception | None = None) -> Any:
        config = ProcessorConfig(
            dicomweb_url="http://127.0.0.1:9/dicom-web",
            dicom_store=LOCAL_STORE,
            fhir_base_url="http://127.0.0.1:9/fhir",
            alerts_topic=ALERTS_TOPIC,
            pipeline=PipelineSettings(analyzer="local"),
            environment="test",
            log_level="INFO",
        )
        processor = Processor(
            config,
            dicomweb=StandInDicomweb(
                answer if answer is not None else TransientError("dicomweb", "unused")
            ),
            analyzer=cast(Any, Unused()),
            fhir=cast(Any, Unused()),
        )
        monkeypatch.setattr(process_entry, "_processor", lambda: processor)
        client = functions_framework.create_app(
            "process_dicom_instance", str(MAIN), "http"
        ).test_client()
        client.log = stream
        return client

    yield make
    logger.removeHandler(handler)


def outcome_lines(client: Any) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in client.log.getvalue().splitlines()]
    return [e for e in entries if e.get("event", "").startswith("instance_")]


def attributes_only() -> dict[str, Any]:
    message = pubsub_message(PATH, {"action": "StoreInstances", "storeName": LOCAL_STORE})
    del message["data"]
    return message


SHAPES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "push-envelope": lambda m: {"json": push_envelope(m)},
    "binary-cloudevent": lambda m: {
        "data": json.dumps(push_envelope(m)),
        "headers": cloud_event_headers(m),
    },
    "structured-cloudevent": lambda m: {
        "data": json.dumps(structured_cloud_event(m)),
        "headers": {"Content-Type": "application/cloudevents+json"},
    },
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_attributes_without_data_are_acknowledged_with_a_reason(
    shape: str, serve: Callable[..., Any]
) -> None:
    client = serve()
    message = attributes_only()
    response = client.post("/", **SHAPES[shape](message))
    assert response.status_code == 200, response.get_data(as_text=True)
    [line] = outcome_lines(client)
    assert (line["event"], line["outcome"], line["reason"]) == (
        Event.INSTANCE_FAILED,
        Outcome.FAILED,
        "malformed_event",
    )
    assert line["message_id"] == message["messageId"]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_data_with_and_without_attributes_reach_the_pipeline(
    shape: str, serve: Callable[..., Any]
) -> None:
    client = serve(structured_report())
    with_attributes = pubsub_message(PATH, {"action": "StoreInstances"})
    data_only = pubsub_message(PATH)
    del data_only["attributes"]
    for message in (with_attributes, data_only):
        assert client.post("/", **SHAPES[shape](message)).status_code == 200
    lines = outcome_lines(client)
    assert [(e["outcome"], e["reason"]) for e in lines] == [
        (Outcome.SKIPPED, "unsupported_sop_class")
    ] * 2
    assert [e["instance_uid"] for e in lines] == ["1.2.3.4"] * 2


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", {}),
        (b"not json", {"Content-Type": "application/json"}),
        (b"[1, 2]", {"Content-Type": "application/json"}),
        (b'{"message": "x"}', {"Content-Type": "application/json"}),
        (b'{"specversion": "1.0"}', {"Content-Type": "application/cloudevents+json"}),
        (
            json.dumps({"specversion": "1.0", "data_base64": "%%%"}).encode(),
            {"Content-Type": "application/cloudevents+json"},
        ),
        (
            json.dumps(
                {"message": {"data": base64.b64encode(b"\xff\xfe").decode(), "messageId": "9"}}
            ).encode(),
            {"Content-Type": "application/json"},
        ),
    ],
    ids=["empty", "not-json", "array", "message-not-object", "no-data", "bad-base64", "not-utf8"],
)
def test_unreadable_bodies_are_acknowledged(
    body: bytes, headers: dict[str, str], serve: Callable[..., Any]
) -> None:
    client = serve()
    response = client.post("/", data=body, headers=headers)
    assert response.status_code == 200
    [line] = outcome_lines(client)
    assert (line["outcome"], line["reason"]) == (Outcome.FAILED, "malformed_event")


def test_other_actions_are_ignored(serve: Callable[..., Any]) -> None:
    client = serve()
    message = pubsub_message(PATH, {"action": "DeleteInstances"})
    assert client.post("/", json=push_envelope(message)).status_code == 200
    [line] = outcome_lines(client)
    assert (line["event"], line["outcome"], line["reason"]) == (
        Event.INSTANCE_SKIPPED,
        Outcome.IGNORED,
        "not_a_new_instance",
    )


@pytest.mark.parametrize(
    "failure",
    [TransientError("dicomweb", "HTTP 503 after retries"), RuntimeError("library bug")],
    ids=["transient", "unexpected"],
)
def test_only_transient_failures_are_not_acknowledged(
    failure: Exception, serve: Callable[..., Any]
) -> None:
    client = serve(failure)
    response = client.post("/", json=push_envelope(pubsub_message(PATH)))
    assert response.status_code == 500
    [line] = outcome_lines(client)
    assert (line["event"], line["outcome"]) == (Event.INSTANCE_RETRY, Outcome.RETRY)
    assert line["reason"] in ("dicomweb_unavailable", "unexpected_error")
