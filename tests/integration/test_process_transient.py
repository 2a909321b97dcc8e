"""Transient failures of each dependency: the function answers 5xx (Pub/Sub redelivers), the
redelivery succeeds, and nothing is written twice. Fault proxies sit in front of Orthanc and the
FHIR server; the Vision double injects its own failures; the analyzer is Cloud Vision here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from imaging_dev.servers.fault_proxy import FaultProxy
from imaging_dev.servers.fhir_server import FhirServer
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.servers.pubsub_emulator import PubSubEmulator
from imaging_dev.servers.vision_server import VisionServer
from tests.support.process import (
    ALERTS_TOPIC,
    ProcessFunction,
    fhir_count,
    function_env,
    instance_path,
    projection,
    pubsub_message,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VISION_SETTINGS: dict[str, Any] = {
    "analyzer": "vision",
    "vision": {"max_attempts": 2, "timeout_seconds": 10},
    "rules": [
        {
            "name": "critical-labels",
            "finding": "label",
            "terms": ["fracture"],
            "min_score": 0.8,
            "priority": "critical",
        }
    ],
}


@pytest.fixture(scope="module")
def proxies(orthanc: OrthancServer, fhir_server: FhirServer) -> Iterator[dict[str, FaultProxy]]:
    with FaultProxy(orthanc.dicomweb_url) as dicomweb, FaultProxy(fhir_server.base_url) as fhir:
        yield {"dicomweb": dicomweb, "fhir": fhir}


@pytest.fixture(scope="module")
def function(
    proxies: dict[str, FaultProxy], _pubsub_session: PubSubEmulator, _vision_session: VisionServer
) -> Iterator[ProcessFunction]:
    env = function_env(
        dicomweb_url=proxies["dicomweb"].url,
        fhir_base_url=proxies["fhir"].url,
        pubsub_host=_pubsub_session.host,
        settings=VISION_SETTINGS,
        vision_url=_vision_session.url,
    )
    with ProcessFunction(env) as server:
        yield server


@pytest.fixture(autouse=True)
def alerts_topic(pubsub_emulator: PubSubEmulator) -> None:
    """Terraform creates the topic in production; the emulator starts with none."""
    pubsub_emulator.create_topic(ALERTS_TOPIC)


@pytest.fixture
def message(
    orthanc: OrthancServer, proxies: dict[str, FaultProxy], vision_server: VisionServer
) -> dict[str, Any]:
    for proxy in proxies.values():
        proxy.reset()
    ds = projection("DX", seed=20)
    upload(orthanc.url, ds)
    return pubsub_message(instance_path(ds))


def outcome(function: ProcessFunction, message: dict[str, Any]) -> dict[str, Any]:
    return [o for o in function.outcomes() if o.get("message_id") == message["messageId"]][-1]


def totals(base_url: str) -> tuple[int, ...]:
    return tuple(
        fhir_count(base_url, t)
        for t in ("ImagingStudy", "DiagnosticReport", "Observation", "Device")
    )


@pytest.mark.parametrize(
    ("dependency", "failures", "status"),
    [
        ("dicomweb", 3, 503),  # dicomweb-client's own 3 attempts all fail
        ("dicomweb", 3, None),  # connection dropped without an answer
        ("fhir", 4, 503),  # the FHIR client's 4 attempts all fail
        ("fhir", 4, 429),
    ],
)
def test_dependency_outage_is_retried_by_pubsub(
    dependency: str,
    failures: int,
    status: int | None,
    function: ProcessFunction,
    proxies: dict[str, FaultProxy],
    fhir_server: FhirServer,
    pubsub_emulator: PubSubEmulator,
    message: dict[str, Any],
) -> None:
    proxies[dependency].fail_next(failures, status)
    first = function.push(message)
    assert first.status_code == 500  # Pub/Sub will redeliver
    assert outcome(function, message)["outcome"] == "retry"
    assert outcome(function, message)["reason"] == f"{dependency}_unavailable"
    before = totals(fhir_server.base_url)
    assert function.push(message).status_code == 200
    assert outcome(function, message)["outcome"] == "processed"
    after = totals(fhir_server.base_url)
    assert after[1] == before[1] + 1  # exactly one new report


def test_brief_hiccup_is_absorbed_without_redelivery(
    function: ProcessFunction,
    proxies: dict[str, FaultProxy],
    pubsub_emulator: PubSubEmulator,
    message: dict[str, Any],
) -> None:
    proxies["fhir"].fail_next(1, 503)
    proxies["dicomweb"].fail_next(1, 503)
    assert function.push(message).status_code == 200
    assert outcome(function, message)["outcome"] == "processed"


def test_vision_outage_is_retried_then_alerts(
    function: ProcessFunction,
    vision_server: VisionServer,
    pubsub_emulator: PubSubEmulator,
    message: dict[str, Any],
) -> None:
    vision_server.respond_with(labels=[("Fracture", 0.93), ("Radiography", 0.9)])
    vision_server.fail_next(2, 503)
    assert function.push(message).status_code == 500
    assert outcome(function, message)["reason"] == "vision_unavailable"
    assert function.push(message).status_code == 200
    result = outcome(function, message)
    assert result["priority"] == "critical"
    assert {f["description"] for f in result["findings"]} == {"fracture", "radiography"}
    [alert] = pubsub_emulator.wait_for_messages(ALERTS_TOPIC, 1)
    assert json.loads(alert.data)["finding"]["description"] == "fracture"
    assert vision_server.calls == 3


def test_fhir_rejection_is_permanent(
    function: ProcessFunction,
    proxies: dict[str, FaultProxy],
    pubsub_emulator: PubSubEmulator,
    message: dict[str, Any],
) -> None:
    proxies["fhir"].fail_next(1, 400)  # our request is wrong: retrying cannot help
    assert function.push(message).status_code == 200
    result = outcome(function, message)
    assert (result["outcome"], result["reason"]) == ("failed", "rejected_by_server")
