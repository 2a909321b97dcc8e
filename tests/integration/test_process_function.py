"""The process function end to end: functions-framework serving the real entry point over HTTP,
against Orthanc (DICOMweb), a real FHIR R4 server and a Pub/Sub gRPC server, local analyzer.

Return codes are the contract with Pub/Sub push: 2xx acknowledges (success and permanent
failures), 5xx makes Pub/Sub redeliver (transient failures). Redelivery is simulated by POSTing
the same message again, which is what Pub/Sub does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from imaging_pipeline.analysis.local import LocalAnalyzer
from imaging_pipeline.telemetry import Event
from pydicom.dataset import Dataset

from imaging_dev.servers.fhir_server import FhirServer
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.servers.pubsub_emulator import PubSubEmulator
from tests.support.process import (
    ALERTS_TOPIC,
    LOCAL_STORE,
    PHI_STRINGS,
    ProcessFunction,
    cloud_event_headers,
    fhir_count,
    fhir_search,
    function_env,
    instance_path,
    projection,
    pubsub_message,
    push_envelope,
    sample,
    structured_cloud_event,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RESOURCE_TYPES = ("ImagingStudy", "DiagnosticReport", "Observation", "Device")


@pytest.fixture(scope="module")
def function(
    orthanc: OrthancServer, fhir_server: FhirServer, _pubsub_session: PubSubEmulator
) -> Iterator[ProcessFunction]:
    env = function_env(
        dicomweb_url=orthanc.dicomweb_url,
        fhir_base_url=fhir_server.base_url,
        pubsub_host=_pubsub_session.host,
    )
    with ProcessFunction(env) as server:
        yield server


@pytest.fixture(autouse=True)
def alerts_topic(pubsub_emulator: PubSubEmulator) -> None:
    """Terraform creates the topic in production; the emulator starts with none."""
    pubsub_emulator.create_topic(ALERTS_TOPIC)


@pytest.fixture
def stored(orthanc: OrthancServer) -> Any:
    def store(ds: Dataset) -> dict[str, Any]:
        upload(orthanc.url, ds)
        return pubsub_message(
            instance_path(ds), {"action": "StoreInstances", "storeName": LOCAL_STORE}
        )

    return store


def last_outcome(function: ProcessFunction, message: dict[str, Any]) -> dict[str, Any]:
    found = [o for o in function.outcomes() if o.get("message_id") == message["messageId"]]
    assert found, f"no outcome logged for message {message['messageId']}"
    return found[-1]


def counts(base_url: str) -> dict[str, int]:
    return {t: fhir_count(base_url, t) for t in RESOURCE_TYPES}


CASES = {
    "CT": lambda: sample("CT_small.dcm"),
    "MR": lambda: sample("MR_small.dcm"),
    "CR": lambda: projection("CR", seed=1),
    "DX": lambda: projection("DX", seed=2),
    "US": lambda: sample("examples_rgb_color.dcm"),
    "colour-SC": lambda: sample("SC_rgb_rle.dcm"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_happy_path_per_modality(
    case: str,
    function: ProcessFunction,
    fhir_server: FhirServer,
    pubsub_emulator: PubSubEmulator,
    stored: Any,
) -> None:
    ds = CASES[case]()
    message = stored(ds)
    response = function.push(message)
    assert response.status_code == 200, function.log_lines()[-20:]
    outcome = last_outcome(function, message)
    assert outcome["outcome"] == "processed", outcome
    assert outcome["event"] == Event.INSTANCE_PROCESSED and outcome["modality"] == ds.Modality
    assert outcome["priority"] == "routine"
    base = fhir_server.base_url
    [study] = fhir_search(
        base, "ImagingStudy", identifier=f"urn:dicom:uid|urn:oid:{ds.StudyInstanceUID}"
    )
    # The source's series, and the series of the SR the processor stored (test_process_sr.py).
    [series, sr_series] = study["series"]
    assert sr_series["modality"]["code"] == "SR" and len(sr_series["instance"]) == 1
    assert series["uid"] == ds.SeriesInstanceUID and series["modality"]["code"] == ds.Modality
    assert [i["uid"] for i in series["instance"]] == [ds.SOPInstanceUID]
    [report] = fhir_search(
        base,
        "DiagnosticReport",
        # The analyzer names its OCR engine's version, whatever this machine has installed.
        identifier=f"urn:imaging-pipeline:report|{ds.SOPInstanceUID}/"
        f"{LocalAnalyzer.name}/{LocalAnalyzer().version}",
    )
    assert f"DiagnosticReport/{report['id']}" == outcome["report"]
    assert report["status"] == "preliminary"
    assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{study['id']}"}]
    assert report["subject"]["identifier"]["value"] == ds.PatientID
    assert pubsub_emulator.published(ALERTS_TOPIC) == []  # routine: no alert


@pytest.mark.parametrize("shape", ["push-envelope", "binary-cloudevent", "structured-cloudevent"])
def test_every_delivery_shape_is_accepted(
    shape: str, function: ProcessFunction, pubsub_emulator: PubSubEmulator, stored: Any
) -> None:
    message = stored(projection("DX", seed=3))
    if shape == "push-envelope":
        response = function.push(message)
    elif shape == "binary-cloudevent":
        response = requests.post(
            function.url,
            data=json.dumps(push_envelope(message)),
            headers=cloud_event_headers(message),
            timeout=120,
        )
    else:
        response = requests.post(
            function.url,
            data=json.dumps(structured_cloud_event(message)),
            headers={"Content-Type": "application/cloudevents+json"},
            timeout=120,
        )
    assert response.status_code == 200
    assert last_outcome(function, message)["outcome"] == "processed"


def test_redelivery_creates_nothing_new(
    function: ProcessFunction, fhir_server: FhirServer, pubsub_emulator: PubSubEmulator, stored: Any
) -> None:
    message = stored(projection("CR", seed=4))
    assert function.push(message).status_code == 200
    first = last_outcome(function, message)
    assert first["fhir_created"] >= 2  # at least the new study and its report
    before = counts(fhir_server.base_url)
    assert function.push(message).status_code == 200
    second = last_outcome(function, message)
    assert second["outcome"] == "processed" and second["fhir_created"] == 0
    assert second["report"] == first["report"]
    assert counts(fhir_server.base_url) == before


def test_second_instance_joins_the_same_study(
    function: ProcessFunction, fhir_server: FhirServer, pubsub_emulator: PubSubEmulator, stored: Any
) -> None:
    first = projection("DX", seed=5)
    second = projection("DX", seed=6)
    second.StudyInstanceUID = first.StudyInstanceUID
    for ds in (first, second):
        assert function.push(stored(ds)).status_code == 200
    [study] = fhir_search(
        fhir_server.base_url,
        "ImagingStudy",
        identifier=f"urn:dicom:uid|urn:oid:{first.StudyInstanceUID}",
    )
    # Two image series and one SR series holding both instances' SRs (one per analyzer).
    assert study["numberOfSeries"] == 3 and study["numberOfInstances"] == 4
    assert [s["modality"]["code"] for s in study["series"]].count("SR") == 1


def test_critical_text_raises_an_alert_without_phi(
    function: ProcessFunction, pubsub_emulator: PubSubEmulator, stored: Any
) -> None:
    ds = projection("CR", text="PORTABLE STAT PNEUMOTHORAX", seed=7)
    message = stored(ds)
    assert function.push(message).status_code == 200
    outcome = last_outcome(function, message)
    assert outcome["priority"] == "critical"
    [alert] = pubsub_emulator.wait_for_messages(ALERTS_TOPIC, 1)
    payload = json.loads(alert.data)
    assert payload["report"] == outcome["report"]
    assert (payload["study_uid"], payload["series_uid"], payload["instance_uid"]) == (
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
    )
    assert payload["priority"] == "critical"
    assert payload["finding"]["kind"] == "burned_in_text"
    assert payload["finding"]["rule"] == "critical-words"
    assert alert.attributes["priority"] == "critical"
    text = alert.data.decode()
    assert not any(s.lower() in text.lower() for s in PHI_STRINGS)
    assert "pneumothorax" not in text  # recognised words stay in the process
    metric_lines = [
        e
        for e in function.json_logs()
        if e.get("event") == Event.CRITICAL_FINDING and e.get("instance_uid") == ds.SOPInstanceUID
    ]
    assert len(metric_lines) == 1 and metric_lines[0]["report"] == outcome["report"]


def test_alert_publish_failure_is_retried_then_succeeds(
    function: ProcessFunction, pubsub_emulator: PubSubEmulator, fhir_server: FhirServer, stored: Any
) -> None:
    ds = projection("DX", text="STAT PNEUMOTHORAX LEFT", seed=8)
    message = stored(ds)
    # The topic is gone (as after a bad deploy): NOT_FOUND is not retried by the client library,
    # so it reaches our error handling, which must make Pub/Sub redeliver.
    pubsub_emulator.reset()
    first = function.push(message)
    assert first.status_code == 500
    assert last_outcome(function, message)["outcome"] == "retry"
    assert last_outcome(function, message)["reason"] == "pubsub_unavailable"
    before = counts(fhir_server.base_url)
    pubsub_emulator.create_topic(ALERTS_TOPIC)
    assert function.push(message).status_code == 200  # Pub/Sub redelivers
    assert last_outcome(function, message)["priority"] == "critical"
    assert len(pubsub_emulator.published(ALERTS_TOPIC)) == 1
    assert counts(fhir_server.base_url) == before  # the retry wrote nothing twice


def _corrupt_ct() -> Dataset:
    ds = sample("CT_small.dcm")
    ds.PixelData = ds.PixelData[:1000]  # far fewer bytes than Rows x Columns x 2
    return ds


PERMANENT: dict[str, Any] = {
    "malformed-path": (
        None,
        lambda ds: pubsub_message("not/an/instance/path"),
        "failed",
        "malformed_event",
    ),
    "not-base64": (
        None,
        lambda ds: {**pubsub_message("x"), "data": "%%%"},
        "failed",
        "malformed_event",
    ),
    "foreign-store": (
        lambda: projection("DX"),
        lambda ds: pubsub_message(instance_path(ds, LOCAL_STORE.replace("orthanc", "other-store"))),
        "failed",
        "foreign_store",
    ),
    "not-found": (
        None,
        lambda ds: pubsub_message(
            f"{LOCAL_STORE}/dicomWeb/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5"
        ),
        "failed",
        "not_found",
    ),
    "delete-action": (
        lambda: projection("DX"),
        lambda ds: pubsub_message(instance_path(ds), {"action": "DeleteInstances"}),
        "ignored",
        "not_a_new_instance",
    ),
    "modality-attribute": (
        lambda: projection("DX"),
        lambda ds: pubsub_message(instance_path(ds), {"modality": "ECG"}),
        "skipped",
        "unsupported_modality",
    ),
    "structured-report": (lambda: sample("test-SR.dcm"), None, "skipped", "unsupported_sop_class"),
    "segmentation": (lambda: sample("liver_1frame.dcm"), None, "skipped", "unsupported_sop_class"),
    "rt-dose": (lambda: sample("rtdose_1frame.dcm"), None, "skipped", "unsupported_sop_class"),
    "corrupt-pixels": (_corrupt_ct, None, "failed", "unrenderable"),
}


@pytest.mark.parametrize("case", list(PERMANENT))
def test_permanent_outcomes_are_acknowledged(
    case: str,
    function: ProcessFunction,
    orthanc: OrthancServer,
    fhir_server: FhirServer,
    pubsub_emulator: PubSubEmulator,
) -> None:
    make, to_message, status, reason = PERMANENT[case]
    ds = make() if make else None
    if ds is not None:
        upload(orthanc.url, ds)
    if to_message is None:
        assert ds is not None
        message = pubsub_message(instance_path(ds))
    else:
        message = to_message(ds)
    before = fhir_count(fhir_server.base_url, "DiagnosticReport")
    response = function.push(message)
    assert response.status_code == 200  # acknowledged: Pub/Sub must not redeliver
    outcome = last_outcome(function, message)
    assert outcome["outcome"] == status
    assert outcome["reason"] == reason
    assert outcome["event"] == {"failed": Event.INSTANCE_FAILED}.get(status, Event.INSTANCE_SKIPPED)
    if ds is not None and to_message is None:  # fetched: the metrics get the modality label
        assert outcome["modality"] == ds.Modality
    assert fhir_count(fhir_server.base_url, "DiagnosticReport") == before


def test_logs_are_structured_with_trace_context(
    function: ProcessFunction, pubsub_emulator: PubSubEmulator, stored: Any
) -> None:
    message = stored(projection("DX", seed=10))
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = requests.post(
        function.url,
        json=push_envelope(message),
        timeout=120,
        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 200
    outcome = last_outcome(function, message)
    assert outcome["logging.googleapis.com/trace"] == f"projects/local-project/traces/{trace}"
    assert outcome["severity"] == "INFO" and outcome["duration_ms"] > 0


def test_concurrent_instances_of_one_study_are_all_kept(
    function: ProcessFunction, fhir_server: FhirServer, pubsub_emulator: PubSubEmulator, stored: Any
) -> None:
    """Instances of one study processed at the same time must not overwrite each other's entry
    in the ImagingStudy: a lost race answers 5xx and the redelivery merges on fresh data."""
    from concurrent.futures import ThreadPoolExecutor

    first = projection("DX", seed=30)
    datasets = [first] + [projection("DX", seed=31 + i) for i in range(3)]
    for ds in datasets[1:]:
        ds.StudyInstanceUID = first.StudyInstanceUID
    pending = [stored(ds) for ds in datasets]
    for _ in range(6):  # Pub/Sub keeps redelivering what was not acknowledged
        with ThreadPoolExecutor(len(pending)) as pool:
            statuses = list(pool.map(lambda m: function.push(m).status_code, pending))
        pending = [m for m, status in zip(pending, statuses, strict=True) if status != 200]
        if not pending:
            break
    assert pending == []
    [study] = fhir_search(
        fhir_server.base_url,
        "ImagingStudy",
        identifier=f"urn:dicom:uid|urn:oid:{first.StudyInstanceUID}",
    )
    images = [s for s in study["series"] if s["modality"]["code"] != "SR"]
    uids = {i["uid"] for s in images for i in s["instance"]}
    assert uids == {ds.SOPInstanceUID for ds in datasets}
    [srs] = [s for s in study["series"] if s["modality"]["code"] == "SR"]
    assert len(srs["instance"]) == 4  # one SR per instance
    assert study["numberOfInstances"] == 8


def test_missing_configuration_is_retried_and_named(
    orthanc: OrthancServer, _pubsub_session: PubSubEmulator
) -> None:
    env = function_env(
        dicomweb_url=orthanc.dicomweb_url,
        fhir_base_url="http://unused",
        pubsub_host=_pubsub_session.host,
    )
    del env["FHIR_BASE_URL"]
    with ProcessFunction(env) as broken:
        response = broken.push(pubsub_message(instance_path(projection("DX"))))
        assert response.status_code == 500  # keep the event: the deployment is what is wrong
        [entry] = [e for e in broken.json_logs() if e.get("reason") == "configuration_error"]
        assert "FHIR_BASE_URL" in entry["message"] and entry["severity"] == "CRITICAL"


def test_no_phi_in_any_log_line(
    function: ProcessFunction, orthanc: OrthancServer, pubsub_emulator: PubSubEmulator, stored: Any
) -> None:
    """Runs last in this module: every line the function ever wrote is scanned."""
    # Extra cases aimed at leaks: the name burned into the pixels (OCR reads it), a failure
    # whose exception path runs with the dataset loaded, a skip after the fetch, and a name of
    # one component, which highdicom's person-name check quotes in a warning while the SR is
    # built.
    single_name = projection("DX", seed=13)
    single_name.PatientName = "Zzyzx"
    for ds in (
        projection("DX", text="ZZYZX QUINTESSA PHI-7734921", seed=11),
        _corrupt_ct(),
        sample("test-SR.dcm"),
        single_name,
    ):
        assert function.push(stored(ds)).status_code == 200
    lines = function.log_lines()
    assert len(lines) > 20
    leaks = [line for line in lines for s in PHI_STRINGS if s.lower() in line.lower()]
    assert leaks == []
    assert any("unlikely to represent the intended person name" in line for line in lines)
