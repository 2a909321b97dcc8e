"""Contract tests: each local server speaks its protocol to the real client library.

These are what other tests and `imaging demo` rely on; if one fails, the server is wrong, not
the code under test elsewhere.
"""

from __future__ import annotations

import threading

import grpc
import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from pydicom.data import get_testdata_file

from imaging_cli.local.fhir_server import FHIR_JSON, FhirServer
from imaging_cli.local.orthanc import OrthancServer
from imaging_cli.local.pubsub_server import PubSubServer

pytestmark = pytest.mark.integration


def _testdata(name: str) -> pydicom.Dataset:
    path = get_testdata_file(name)
    assert path is not None, name
    return pydicom.dcmread(path)


# --- Orthanc (DICOMweb) -----------------------------------------------------------------------

def test_orthanc_store_search_retrieve_through_dicomweb_client(orthanc: OrthancServer) -> None:
    orthanc.reset()
    client = DICOMwebClient(url=orthanc.dicomweb_url)
    ct = _testdata("CT_small.dcm")

    client.store_instances([ct])

    found = client.search_for_instances(search_filters={"StudyInstanceUID": ct.StudyInstanceUID})
    assert [f["00080018"]["Value"][0] for f in found] == [ct.SOPInstanceUID]
    back = client.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    assert back.SOPInstanceUID == ct.SOPInstanceUID
    assert back.pixel_array.shape == ct.pixel_array.shape
    assert (back.pixel_array == ct.pixel_array).all()


def test_orthanc_store_is_idempotent_and_reset_empties_it(orthanc: OrthancServer) -> None:
    orthanc.reset()
    client = DICOMwebClient(url=orthanc.dicomweb_url)
    mr = _testdata("MR_small.dcm")
    client.store_instances([mr])
    client.store_instances([mr])  # a retried STOW-RS of the same instance must not fail
    assert orthanc.study_count() == 1

    orthanc.reset()
    assert orthanc.study_count() == 0
    assert client.search_for_studies() == []


# --- FHIR R4 -------------------------------------------------------------------------------

STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
STUDY_URN = "urn:uuid:6a1c0f5e-3c1e-4f5a-9d8e-0c6f7f9b1a01"
REPORT_URN = "urn:uuid:6a1c0f5e-3c1e-4f5a-9d8e-0c6f7f9b1a02"


def _study_and_report_transaction(conclusion: str) -> dict[str, object]:
    """The shape the process function sends: idempotent on the study UID."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": STUDY_URN,
                "resource": {
                    "resourceType": "ImagingStudy",
                    "status": "available",
                    "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{STUDY_UID}"}],
                    "subject": {"display": "synthetic"},
                },
                "request": {
                    "method": "POST",
                    "url": "ImagingStudy",
                    "ifNoneExist": f"identifier=urn:dicom:uid|urn:oid:{STUDY_UID}",
                },
            },
            {
                "fullUrl": REPORT_URN,
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "status": "preliminary",
                    "identifier": [{"system": "urn:test:ai-report", "value": STUDY_UID}],
                    "code": {"text": "AI triage"},
                    "imagingStudy": [{"reference": STUDY_URN}],
                    "conclusion": conclusion,
                },
                "request": {
                    "method": "PUT",
                    "url": f"DiagnosticReport?identifier=urn:test:ai-report|{STUDY_UID}",
                },
            },
        ],
    }


def _search(fhir: FhirServer, query: str) -> list[dict]:
    response = requests.get(f"{fhir.base_url}/{query}", timeout=10)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset"
    return [entry["resource"] for entry in bundle.get("entry", [])]


def test_fhir_transaction_conditional_create_update_is_idempotent(
    fhir_server: FhirServer,
) -> None:
    fhir_server.reset()
    headers = {"Content-Type": FHIR_JSON}
    statuses = []
    for conclusion in ("first run", "second run"):
        response = requests.post(fhir_server.base_url, headers=headers, timeout=10,
                                 json=_study_and_report_transaction(conclusion))
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["type"] == "transaction-response"
        statuses.append([e["response"]["status"] for e in reply["entry"]])

    assert statuses == [["201", "201"], ["200", "200"]]
    studies = _search(fhir_server, "ImagingStudy")
    reports = _search(fhir_server, "DiagnosticReport")
    assert len(studies) == 1
    assert len(reports) == 1
    # urn:uuid was rewritten to the stored study, also when the create matched an existing one.
    assert reports[0]["imagingStudy"] == [{"reference": f"ImagingStudy/{studies[0]['id']}"}]
    assert reports[0]["conclusion"] == "second run"


def test_fhir_rest_crud_and_search(fhir_server: FhirServer) -> None:
    fhir_server.reset()
    base, headers = fhir_server.base_url, {"Content-Type": FHIR_JSON}
    created = requests.post(f"{base}/Observation", headers=headers, timeout=10, json={
        "resourceType": "Observation", "status": "preliminary", "code": {"text": "finding"},
    })
    assert created.status_code == 201
    assert created.headers["Content-Type"].startswith(FHIR_JSON)
    obs = created.json()
    assert created.headers["Location"].startswith(f"{base}/Observation/{obs['id']}")

    obs["status"] = "final"
    updated = requests.put(f"{base}/Observation/{obs['id']}", headers=headers, json=obs, timeout=10)
    assert updated.status_code == 200
    assert requests.get(f"{base}/Observation/{obs['id']}", timeout=10).json()["status"] == "final"
    assert [o["id"] for o in _search(fhir_server, "Observation?status=final")] == [obs["id"]]
    assert _search(fhir_server, "Observation?status=preliminary") == []

    assert requests.delete(f"{base}/Observation/{obs['id']}", timeout=10).status_code == 200
    assert requests.get(f"{base}/Observation/{obs['id']}", timeout=10).status_code in (404, 410)
    bad = requests.post(f"{base}/Observation", headers=headers, data="{not json", timeout=10)
    assert bad.status_code == 400
    assert bad.json()["resourceType"] == "OperationOutcome"


# --- Pub/Sub (gRPC) ------------------------------------------------------------------------

TOPIC = "projects/test-project/topics/dicom-notifications"
SUBSCRIPTION = "projects/test-project/subscriptions/process"
INSTANCE_PATH = ("projects/p/locations/l/datasets/d/dicomStores/s/dicomWeb/"
                 "studies/1.2/series/1.2.3/instances/1.2.3.4")


def test_pubsub_publish_and_pull_through_real_clients(pubsub_server: PubSubServer) -> None:
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    publisher.create_topic(name=TOPIC)
    assert publisher.get_topic(topic=TOPIC).name == TOPIC
    subscriber.create_subscription(name=SUBSCRIPTION, topic=TOPIC)

    message_id = publisher.publish(TOPIC, INSTANCE_PATH.encode(), action="StoreInstances").result(
        timeout=10
    )

    [message] = pubsub_server.published("dicom-notifications")
    assert (message.data, message.attributes, message.message_id) == (
        INSTANCE_PATH.encode(), {"action": "StoreInstances"}, message_id
    )
    pulled = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, timeout=10)
    assert [m.message.data for m in pulled.received_messages] == [INSTANCE_PATH.encode()]
    subscriber.acknowledge(subscription=SUBSCRIPTION,
                           ack_ids=[m.ack_id for m in pulled.received_messages])
    again = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, timeout=10)
    assert list(again.received_messages) == []
    with pytest.raises(gexc.NotFound):
        publisher.get_topic(topic="projects/test-project/topics/missing")


def test_pubsub_transient_failures_are_retried_by_the_client(pubsub_server: PubSubServer) -> None:
    publisher = pubsub_v1.PublisherClient()
    pubsub_server.fail_next(2, grpc.StatusCode.UNAVAILABLE)

    publisher.publish(TOPIC, b"after two failures").result(timeout=30)

    assert pubsub_server.calls.count("Publish") == 3
    assert [m.data for m in pubsub_server.published(TOPIC)] == [b"after two failures"]


def test_pubsub_permanent_failure_and_missing_topic_reach_the_caller(
    pubsub_server: PubSubServer,
) -> None:
    publisher = pubsub_v1.PublisherClient()
    pubsub_server.fail_next(1, grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(gexc.PermissionDenied):
        publisher.publish(TOPIC, b"x").result(timeout=10)

    pubsub_server.auto_create_topics = False
    with pytest.raises(gexc.NotFound):
        publisher.publish("projects/test-project/topics/not-created", b"x").result(timeout=10)
    assert pubsub_server.published() == []


def test_pubsub_streaming_pull_delivers_and_nack_redelivers(pubsub_server: PubSubServer) -> None:
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    publisher.create_topic(name=TOPIC)
    subscriber.create_subscription(name=SUBSCRIPTION, topic=TOPIC)
    received: list[bytes] = []
    done = threading.Event()

    def callback(message: pubsub_v1.subscriber.message.Message) -> None:
        received.append(message.data)
        if len(received) == 1:
            message.nack()  # first delivery refused: the server must deliver it again
        else:
            message.ack()
            done.set()

    publisher.publish(TOPIC, b"redeliver me").result(timeout=10)
    future = subscriber.subscribe(SUBSCRIPTION, callback)
    try:
        assert done.wait(timeout=20)
    finally:
        future.cancel()
        future.result(timeout=10)
        subscriber.close()
    assert received == [b"redeliver me", b"redeliver me"]
