"""Contract tests: each local server speaks its protocol to the real client library.

These are what other tests and `imaging demo` rely on; if one fails, the server is wrong, not
the code under test elsewhere.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import google.cloud.pubsub_v1 as pubsub_v1
import google.cloud.storage as storage
import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import vision
from PIL import Image
from pydicom.data import get_testdata_file

from imaging_dev.servers._base import ServerStartError, free_port
from imaging_dev.servers.fault_proxy import FaultProxy
from imaging_dev.servers.fhir_server import FHIR_JSON, FhirServer
from imaging_dev.servers.gcs_emulator import GcsEmulator
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.servers.pubsub_emulator import PubSubEmulator
from imaging_dev.servers.s3_server import S3Server
from imaging_dev.servers.vision_server import VisionServer

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


def _study_and_report_transaction(conclusion: str) -> dict[str, Any]:
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
    for entry in bundle.get("entry", []):  # absolute fullUrl, as Google's store writes it
        resource = entry["resource"]
        assert entry["fullUrl"] == f"{fhir.base_url}/{resource['resourceType']}/{resource['id']}"
    return [entry["resource"] for entry in bundle.get("entry", [])]


def test_fhir_transaction_conditional_create_update_is_idempotent(
    fhir_server: FhirServer,
) -> None:
    fhir_server.reset()
    headers = {"Content-Type": FHIR_JSON}
    statuses = []
    for conclusion in ("first run", "second run"):
        response = requests.post(
            fhir_server.base_url,
            headers=headers,
            timeout=10,
            json=_study_and_report_transaction(conclusion),
        )
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["type"] == "transaction-response"
        statuses.append([e["response"]["status"] for e in reply["entry"]])
        locations = [e["response"]["location"] for e in reply["entry"]]

    assert statuses == [["201 Created", "201 Created"], ["200 OK", "200 OK"]]  # as Google
    studies = _search(fhir_server, "ImagingStudy")
    reports = _search(fhir_server, "DiagnosticReport")
    assert len(studies) == 1
    assert len(reports) == 1
    # Absolute, versioned locations, as Google's store answers.
    assert locations == [
        f"{fhir_server.base_url}/ImagingStudy/{studies[0]['id']}/_history/"
        f"{studies[0]['meta']['versionId']}",
        f"{fhir_server.base_url}/DiagnosticReport/{reports[0]['id']}/_history/"
        f"{reports[0]['meta']['versionId']}",
    ]
    # urn:uuid was rewritten to the stored study, also when the create matched an existing one.
    assert reports[0]["imagingStudy"] == [{"reference": f"ImagingStudy/{studies[0]['id']}"}]
    assert reports[0]["conclusion"] == "second run"


def test_fhir_rejects_resources_that_break_the_r4_structure(fhir_server: FhirServer) -> None:
    # Google's store validates against the base R4 definitions; code that passes here must too.
    fhir_server.reset()
    base, headers = fhir_server.base_url, {"Content-Type": FHIR_JSON}
    invalid = [
        {"resourceType": "Observation", "code": {"text": "no status"}},
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "score": 1},
        {"resourceType": "Observation", "status": "final", "code": "not a CodeableConcept"},
    ]
    for resource in invalid:
        response = requests.post(f"{base}/Observation", json=resource, headers=headers, timeout=10)
        assert response.status_code == 400, resource
        assert response.json()["resourceType"] == "OperationOutcome"

    bundle = _study_and_report_transaction("x")
    del bundle["entry"][1]["resource"]["status"]  # DiagnosticReport.status is required
    rejected = requests.post(base, json=bundle, headers=headers, timeout=10)
    assert rejected.status_code == 400
    assert _search(fhir_server, "ImagingStudy") == []  # nothing of the bundle was stored


def test_fhir_enforces_referential_integrity_like_our_google_store(
    fhir_server: FhirServer,
) -> None:
    # modules/healthcare_stores.py keeps referential integrity on: dangling references fail.
    fhir_server.reset()
    base, headers = fhir_server.base_url, {"Content-Type": FHIR_JSON}

    def observation(reference: str) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": reference},
        }

    missing = requests.post(
        f"{base}/Observation", json=observation("Patient/nobody"), headers=headers, timeout=10
    )
    assert missing.status_code == 400
    assert "Patient/nobody" in missing.text
    patient = requests.post(
        f"{base}/Patient", json={"resourceType": "Patient"}, headers=headers, timeout=10
    ).json()
    ok = requests.post(
        f"{base}/Observation",
        json=observation(f"Patient/{patient['id']}"),
        headers=headers,
        timeout=10,
    )
    assert ok.status_code == 201

    bundle = _study_and_report_transaction("x")
    bundle["entry"][1]["resource"]["imagingStudy"] = [{"reference": "urn:uuid:not-in-bundle"}]
    assert requests.post(base, json=bundle, headers=headers, timeout=10).status_code == 400
    assert _search(fhir_server, "DiagnosticReport") == []


def test_fhir_concurrent_transactions_create_one_study(fhir_server: FhirServer) -> None:
    # Two instances of one study processed at once must not create two ImagingStudy resources.
    fhir_server.reset()

    def post(i: int) -> int:
        return requests.post(
            fhir_server.base_url,
            timeout=30,
            headers={"Content-Type": FHIR_JSON},
            json=_study_and_report_transaction(f"run {i}"),
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(post, range(16))) == [200] * 16
    assert len(_search(fhir_server, "ImagingStudy")) == 1
    assert len(_search(fhir_server, "DiagnosticReport")) == 1


def test_fhir_identifier_searches_answer_what_a_full_scan_answers(
    fhir_server: FhirServer,
) -> None:
    """fhir_server.mjs narrows `identifier=[system|]value` searches before medplum matches; an
    OR list (`a,a`) is left to medplum's full scan, so both forms must find the same resources."""
    fhir_server.reset()
    identifiers = [
        ("urn:dicom:uid", "urn:oid:1.2.3"),
        ("urn:dicom:uid", "urn:oid:1.2.3.4"),
        ("urn:other", "urn:oid:1.2.3"),
        ("urn:dicom:uid", "URN:OID:1.2.3"),
        (None, "urn:oid:1.2.3"),
    ]
    for system, value in identifiers:
        identifier = {"value": value} | ({"system": system} if system else {})
        response = requests.post(
            f"{fhir_server.base_url}/Device",
            headers={"Content-Type": FHIR_JSON},
            json={"resourceType": "Device", "identifier": [identifier]},
            timeout=10,
        )
        assert response.status_code == 201, response.text
    queries = [
        "urn:dicom:uid|urn:oid:1.2.3",
        "urn:oid:1.2.3",
        "|urn:oid:1.2.3",
        "urn:other|urn:oid:1.2.3",
        "urn:dicom:uid|urn:oid:1.2",
        "urn:dicom:uid|URN:OID:1.2.3.4",
    ]
    for token in queries:
        narrowed = {r["id"] for r in _search(fhir_server, f"Device?identifier={token}")}
        full_scan = {r["id"] for r in _search(fhir_server, f"Device?identifier={token},{token}")}
        assert narrowed == full_scan, token
    assert len(_search(fhir_server, "Device?identifier=urn:dicom:uid|urn:oid:1.2.3.4")) == 1


def test_fhir_rest_crud_and_search(fhir_server: FhirServer) -> None:
    fhir_server.reset()
    base, headers = fhir_server.base_url, {"Content-Type": FHIR_JSON}
    created = requests.post(
        f"{base}/Observation",
        headers=headers,
        timeout=10,
        json={
            "resourceType": "Observation",
            "status": "preliminary",
            "code": {"text": "finding"},
        },
    )
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
INSTANCE_PATH = (
    "projects/p/locations/l/datasets/d/dicomStores/s/dicomWeb/"
    "studies/1.2/series/1.2.3/instances/1.2.3.4"
)


def test_pubsub_publish_and_pull_through_real_clients(pubsub_emulator: PubSubEmulator) -> None:
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    publisher.create_topic(name=TOPIC)
    assert publisher.get_topic(topic=TOPIC).name == TOPIC
    subscriber.create_subscription(name=SUBSCRIPTION, topic=TOPIC)

    message_id = publisher.publish(TOPIC, INSTANCE_PATH.encode(), action="StoreInstances").result(
        timeout=10
    )

    pulled = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, timeout=10)
    [received] = pulled.received_messages
    assert (received.message.data, dict(received.message.attributes)) == (
        INSTANCE_PATH.encode(),
        {"action": "StoreInstances"},
    )
    assert received.message.message_id == message_id
    subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=[received.ack_id])
    with pytest.raises(gexc.NotFound):
        publisher.publish("projects/test-project/topics/missing", b"x").result(timeout=10)


def test_pubsub_recorder_sees_what_was_published(pubsub_emulator: PubSubEmulator) -> None:
    pubsub_emulator.create_topic(TOPIC)
    publisher = pubsub_v1.PublisherClient()
    ids = [publisher.publish(TOPIC, f"m{i}".encode()).result(timeout=10) for i in range(3)]
    messages = pubsub_emulator.wait_for_messages(TOPIC, 3)
    assert [(m.message_id, m.data) for m in messages] == [
        (ids[i], f"m{i}".encode()) for i in range(3)
    ]
    pubsub_emulator.clear_published(TOPIC)
    assert pubsub_emulator.published(TOPIC) == []
    pubsub_emulator.reset()
    with pytest.raises(gexc.NotFound):  # reset() leaves no topic behind
        publisher.get_topic(topic=TOPIC)


class _PushEndpoint:
    """A tiny HTTP endpoint that answers with scripted statuses and records what it got."""

    def __init__(self, statuses: list[int], default: int = 204, delay: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.statuses, self.default = statuses, default
        self.concurrent = self.max_concurrent = 0
        lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with lock:
                    owner.concurrent += 1
                    owner.max_concurrent = max(owner.max_concurrent, owner.concurrent)
                time.sleep(delay)  # a slow handler, like a busy function
                with lock:
                    owner.concurrent -= 1
                    owner.bodies.append(
                        json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    )
                    status = owner.statuses.pop(0) if owner.statuses else owner.default
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/push"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def push_endpoint() -> Iterator[Callable[..., _PushEndpoint]]:
    endpoints: list[_PushEndpoint] = []

    def make(statuses: list[int], default: int = 204, delay: float = 0.0) -> _PushEndpoint:
        endpoints.append(_PushEndpoint(statuses, default, delay))
        return endpoints[-1]

    yield make
    for endpoint in endpoints:
        endpoint.close()


def test_pubsub_push_dead_letters_after_max_delivery_attempts(
    pubsub_emulator: PubSubEmulator,
    push_endpoint: Callable[..., _PushEndpoint],
) -> None:
    """The subscription the fixtures and the demo declare: retry policy, then dead letters."""
    endpoint = push_endpoint([], default=500)  # a handler that always fails
    dead_letters = "projects/test-project/topics/dead-letters"
    pubsub_emulator.create_push_subscription(
        SUBSCRIPTION,
        TOPIC,
        endpoint.url,
        dead_letter_topic=dead_letters,
        max_delivery_attempts=5,
        backoff_seconds=(0.1, 0.2),
    )
    message_id = pubsub_v1.PublisherClient().publish(TOPIC, b"poison").result(timeout=10)

    [dead] = pubsub_emulator.wait_for_messages(dead_letters, 1, timeout=90)
    assert dead.data == b"poison"
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert dead.attributes["CloudPubSubDeadLetterSourceSubscription"] == "process"
    assert len(endpoint.bodies) == 5
    envelope = endpoint.bodies[-1]
    assert envelope["subscription"] == SUBSCRIPTION
    assert envelope["message"]["messageId"] == message_id
    assert base64.b64decode(envelope["message"]["data"]) == b"poison"


def test_pubsub_rest_publish(pubsub_emulator: PubSubEmulator) -> None:
    """What Orthanc's hook does: REST publish, the same messages as over gRPC."""
    pubsub_emulator.create_topic(TOPIC)
    body = {
        "messages": [
            {
                "data": base64.b64encode(b"over REST").decode(),
                "attributes": {"action": "StoreInstances"},
            }
        ]
    }
    reply = requests.post(pubsub_emulator.publish_url(TOPIC), json=body, timeout=10)
    assert reply.status_code == 200
    [message] = pubsub_emulator.wait_for_messages(TOPIC, 1)
    assert reply.json() == {"messageIds": [message.message_id]}
    assert (message.data, message.attributes) == (b"over REST", {"action": "StoreInstances"})


def test_orthanc_publishes_store_notifications_like_the_healthcare_api(
    pubsub_emulator: PubSubEmulator,
) -> None:
    store = "projects/p/locations/l/datasets/d/dicomStores/s"
    topic = "projects/p/topics/dicom-store"
    pubsub_emulator.create_topic(topic)
    with OrthancServer(
        notification_url=pubsub_emulator.publish_url(topic), store_name=store
    ) as server:
        client = DICOMwebClient(url=server.dicomweb_url)
        datasets = [_testdata("CT_small.dcm"), _testdata("MR_small.dcm")]
        client.store_instances(datasets)
        messages = pubsub_emulator.wait_for_messages(topic, 2, timeout=20)

    expected = {
        f"{store}/dicomWeb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
        for ds in datasets
    }
    assert {m.data.decode() for m in messages} == expected
    by_uid = {ds.SOPInstanceUID: ds for ds in datasets}
    for m in messages:
        ds = by_uid[m.attributes["sopInstanceUID"]]
        assert m.attributes == {
            "action": "StoreInstances",
            "storeName": store,
            "studyInstanceUID": ds.StudyInstanceUID,
            "seriesInstanceUID": ds.SeriesInstanceUID,
            "sopInstanceUID": ds.SOPInstanceUID,
            "modality": ds.Modality,
        }


# --- Cloud Vision (REST) -------------------------------------------------------------------

FeatureType = vision.Feature.Type


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _vision_client(server: VisionServer) -> vision.ImageAnnotatorClient:
    # The REST transport keeps an explicit http:// scheme in api_endpoint (it prefixes
    # https:// only when the endpoint has no scheme), so the real client can talk to us.
    return vision.ImageAnnotatorClient(
        transport="rest",
        client_options={"api_endpoint": server.url},
        credentials=AnonymousCredentials(),
    )


def _annotate_request(content: bytes, *types: int) -> vision.AnnotateImageRequest:
    return vision.AnnotateImageRequest(
        image=vision.Image(content=content),
        features=[vision.Feature(type_=t, max_results=5) for t in types],
    )


def test_vision_default_answer_comes_from_the_image(vision_server: VisionServer) -> None:
    client = _vision_client(vision_server)
    gradient = _png(Image.linear_gradient("L").resize((64, 32)))
    blank = _png(Image.new("L", (16, 16), 0))

    response = client.batch_annotate_images(
        requests=[
            _annotate_request(gradient, FeatureType.LABEL_DETECTION, FeatureType.TEXT_DETECTION),
            _annotate_request(blank, FeatureType.LABEL_DETECTION),
        ]
    )

    first, second = response.responses
    assert [a.description for a in first.label_annotations] == ["Medical imaging", "Radiography"]
    assert list(first.text_annotations) == []
    assert [a.description for a in second.label_annotations] == ["Black"]
    assert [(r.features, r.image_size, r.image_mode) for r in vision_server.requests] == [
        ([("LABEL_DETECTION", 5), ("TEXT_DETECTION", 5)], (64, 32), "L"),
        ([("LABEL_DETECTION", 5)], (16, 16), "L"),
    ]


def test_vision_programmed_answer_in_real_field_names(vision_server: VisionServer) -> None:
    vision_server.respond_with(
        labels=[("X-ray", 0.97), ("Bone", 0.8)], objects=[("Person", 0.6)], text="JOHN DOE 1970"
    )
    request = _annotate_request(
        _png(Image.new("RGB", (20, 10), (9, 9, 9))),
        FeatureType.LABEL_DETECTION,
        FeatureType.OBJECT_LOCALIZATION,
        FeatureType.TEXT_DETECTION,
    )
    request.features[0].max_results = 1

    response = _vision_client(vision_server).annotate_image(request)

    assert [(a.description, round(a.score, 2)) for a in response.label_annotations] == [
        ("X-ray", 0.97)
    ]
    assert [o.name for o in response.localized_object_annotations] == ["Person"]
    assert len(response.localized_object_annotations[0].bounding_poly.normalized_vertices) == 4
    assert [t.description for t in response.text_annotations] == [
        "JOHN DOE 1970",
        "JOHN",
        "DOE",
        "1970",
    ]
    assert response.full_text_annotation.text == "JOHN DOE 1970"


def test_vision_failures_follow_the_client_retry_policy(vision_server: VisionServer) -> None:
    client = _vision_client(vision_server)
    request = _annotate_request(_png(Image.new("L", (8, 8), 255)), FeatureType.LABEL_DETECTION)

    vision_server.fail_next(2, status=503)
    # batch_annotate_images retries UNAVAILABLE by default (backoff from 0.1 s)...
    client.batch_annotate_images(requests=[request])
    assert vision_server.calls == 3
    # ...the annotate_image helper passes retry=None, so a 503 reaches the caller;
    vision_server.fail_next(1, status=503)
    with pytest.raises(gexc.ServiceUnavailable):
        client.annotate_image(request)
    # and 429 is not retried by the default policy at all.
    vision_server.fail_next(1, status=429, retry_after=3)
    with pytest.raises(gexc.TooManyRequests):
        client.batch_annotate_images(requests=[request])
    assert vision_server.calls == 5


def test_vision_rejects_malformed_requests_like_google(vision_server: VisionServer) -> None:
    url = f"{vision_server.url}/v1/images:annotate"
    good_image = base64.b64encode(_png(Image.new("L", (4, 4)))).decode()
    bad_requests = [
        {},
        {"requests": []},
        {
            "requests": [
                {"image": {"content": "%%%not base64"}, "features": [{"type": "LABEL_DETECTION"}]}
            ]
        },
        {"requests": [{"image": {"content": good_image}, "features": [{"type": "NO_SUCH"}]}]},
        {"requests": [{"image": {"content": good_image}, "features": []}]},
        {
            "requests": [
                {
                    "image": {"content": "A" * (10 * 1024 * 1024)},  # over the 10 MB limit
                    "features": [{"type": "LABEL_DETECTION"}],
                }
            ]
        },
    ]
    for body in bad_requests:
        response = requests.post(url, json=body, timeout=10)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")

    # Bytes that are valid base64 but not an image: a per-image error, as Google answers.
    not_image = base64.b64encode(b"definitely not an image").decode()
    ok = requests.post(
        url,
        timeout=10,
        json={
            "requests": [
                {"image": {"content": not_image}, "features": [{"type": "LABEL_DETECTION"}]}
            ]
        },
    )
    assert ok.status_code == 200
    assert ok.json()["responses"][0]["error"]["message"] == "Bad image data."
    assert (
        requests.post(f"{vision_server.url}/v1/files:annotate", json={}, timeout=10).status_code
        == 404
    )
    # The regional form the client uses with `parent` is served too.
    regional = requests.post(
        f"{vision_server.url}/v1/projects/p/locations/eu/images:annotate",
        timeout=10,
        json={
            "requests": [
                {
                    "image": {"content": good_image},
                    "features": [{"type": "LABEL_DETECTION", "maxResults": 1}],
                }
            ]
        },
    )
    assert regional.status_code == 200
    assert len(regional.json()["responses"][0]["labelAnnotations"]) == 1


# --- Cloud Storage -------------------------------------------------------------------------


def test_gcs_upload_download_move_and_metadata(gcs_emulator: GcsEmulator) -> None:
    client = gcs_emulator.client()
    bucket = client.create_bucket("staging-bucket")
    payload = bytes(range(256)) * 4096  # 1 MiB, above the client's single-request threshold
    blob = bucket.blob("incoming/study 1/ct.dcm")
    blob.metadata = {"source": "modality-1"}
    blob.upload_from_string(payload, content_type="application/dicom")

    stored = bucket.get_blob("incoming/study 1/ct.dcm")
    assert stored is not None
    assert (stored.size, stored.content_type, stored.metadata) == (
        len(payload),
        "application/dicom",
        {"source": "modality-1"},
    )
    assert stored.download_as_bytes() == payload

    # A "move" as the ingest function does it: copy to processed/, then delete the original.
    moved = bucket.copy_blob(stored, bucket, "processed/study 1/ct.dcm")
    stored.delete()
    assert [b.name for b in client.list_blobs("staging-bucket")] == ["processed/study 1/ct.dcm"]
    assert moved.metadata == {"source": "modality-1"}
    assert moved.download_as_bytes() == payload
    assert list(client.list_blobs("staging-bucket", prefix="incoming/")) == []


def test_gcs_generation_preconditions_are_enforced(gcs_emulator: GcsEmulator) -> None:
    # gcp-storage-emulator ignores these; GcsEmulator enforces them, as Cloud Storage does.
    bucket = gcs_emulator.client().create_bucket("staging-bucket")
    source = bucket.blob("incoming/a.dcm")
    source.upload_from_string(b"first")
    source.reload()
    generation = source.generation

    with pytest.raises(gexc.PreconditionFailed):  # "create only": the object exists
        bucket.blob("incoming/a.dcm").upload_from_string(b"second", if_generation_match=0)
    bucket.copy_blob(source, bucket, "processed/a.dcm", if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):  # a copy never overwrites the destination
        bucket.copy_blob(source, bucket, "processed/a.dcm", if_generation_match=0)
    with pytest.raises(gexc.NotFound):  # a generation that is not the live one
        bucket.copy_blob(source, bucket, "processed/b.dcm", source_generation=generation + 1)
    with pytest.raises(gexc.PreconditionFailed):  # a delete never removes another generation
        bucket.delete_blob("incoming/a.dcm", if_generation_match=generation + 1)
    bucket.delete_blob("incoming/a.dcm", if_generation_match=generation)
    with pytest.raises(gexc.NotFound):
        bucket.delete_blob("incoming/a.dcm", if_generation_match=generation)
    assert [b.name for b in bucket.list_blobs()] == ["processed/a.dcm"]
    assert bucket.blob("processed/a.dcm").download_as_bytes() == b"first"


def test_gcs_env_var_client_and_reset(gcs_emulator: GcsEmulator) -> None:
    # Code that builds a plain storage.Client() finds the emulator via STORAGE_EMULATOR_HOST.
    client = storage.Client(project="test")
    client.create_bucket("from-env").blob("x").upload_from_string(b"1")
    assert [b.name for b in gcs_emulator.client().list_buckets()] == ["from-env"]
    gcs_emulator.reset()
    assert list(client.list_buckets()) == []


# --- Fault proxy ---------------------------------------------------------------------------


def test_fault_proxy_forwards_dicomweb_faithfully_and_injects_failures(
    orthanc: OrthancServer,
    fault_proxy: Callable[[str], FaultProxy],
) -> None:
    orthanc.reset()
    proxy = fault_proxy(orthanc.url)
    client = DICOMwebClient(url=f"{proxy.url}/dicom-web")
    ct = _testdata("CT_small.dcm")
    client.store_instances([ct])  # multipart/related request body through the proxy
    # multipart/related response streamed back through the proxy
    back = client.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    assert back.SOPInstanceUID == ct.SOPInstanceUID
    assert (back.pixel_array == ct.pixel_array).all()
    found = client.search_for_series(ct.StudyInstanceUID)  # query string forwarded
    assert [s["0020000E"]["Value"][0] for s in found] == [ct.SeriesInstanceUID]

    proxy.fail_next(1, status=503, retry_after=2)
    failed = requests.get(f"{proxy.url}/dicom-web/studies", timeout=10)
    assert (failed.status_code, failed.headers["Retry-After"]) == (503, "2")
    assert requests.get(f"{proxy.url}/dicom-web/studies", timeout=10).status_code == 200

    proxy.fail_next(1, status=None)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{proxy.url}/dicom-web/studies", timeout=10)
    assert requests.get(f"{proxy.url}/dicom-web/studies", timeout=10).status_code == 200

    log = proxy.requests
    assert [r.injected for r in log[-4:]] == [True, False, True, False]
    assert [r.status for r in log[-4:]] == [503, 200, None, 200]
    assert log[0].method == "POST"
    assert log[0].request_bytes > 0
    assert proxy.request_count == len(log)


def test_fault_proxy_keeps_the_path_prefix_and_host_for_fhir(
    fhir_server: FhirServer,
    fault_proxy: Callable[[str], FaultProxy],
) -> None:
    fhir_server.reset()
    proxy = fault_proxy(fhir_server.base_url)
    assert proxy.url.endswith("/fhir/R4")
    headers = {"Content-Type": FHIR_JSON}
    proxy.fail_next(2, status=429)
    for _ in range(2):
        throttled = requests.post(
            f"{proxy.url}/Device", json={"resourceType": "Device"}, headers=headers, timeout=10
        )
        assert throttled.status_code == 429
    created = requests.post(
        f"{proxy.url}/Device", json={"resourceType": "Device"}, headers=headers, timeout=10
    )
    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"{proxy.url}/Device/")  # Host was kept
    assert len(_search(fhir_server, "Device")) == 1  # the throttled posts never arrived


def test_fault_proxy_forwards_chunked_request_bodies_and_head(
    fhir_server: FhirServer,
    fault_proxy: Callable[[str], FaultProxy],
) -> None:
    fhir_server.reset()
    proxy = fault_proxy(fhir_server.base_url)
    body = json.dumps({"resourceType": "Device", "status": "active"}).encode()

    def chunks() -> Iterator[bytes]:  # requests sends a generator with Transfer-Encoding: chunked
        yield body[:10]
        yield body[10:]

    created = requests.post(
        f"{proxy.url}/Device", data=chunks(), timeout=10, headers={"Content-Type": FHIR_JSON}
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"
    head = requests.head(f"{proxy.url}/Device/{created.json()['id']}", timeout=10)
    direct = requests.head(f"{fhir_server.base_url}/Device/{created.json()['id']}", timeout=10)
    assert head.status_code == direct.status_code
    assert proxy.requests[0].request_bytes == len(body)


def test_fault_proxy_delay_trips_client_timeouts(
    fhir_server: FhirServer,
    fault_proxy: Callable[[str], FaultProxy],
) -> None:
    proxy = fault_proxy(fhir_server.base_url)
    proxy.delay_next(1, seconds=1.0)
    with pytest.raises(requests.Timeout):
        requests.get(f"{proxy.url}/metadata", timeout=0.2)
    assert requests.get(f"{proxy.url}/Device", timeout=5).status_code == 200


# --- S3 (moto, AWS only) -------------------------------------------------------------------


def test_s3_server_round_trip_through_boto3(s3_server: S3Server) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="site-uploads")
    s3.put_object(Bucket="site-uploads", Key="incoming/a.dcm", Body=b"DICM", Metadata={"site": "1"})
    # A plain boto3 client finds the server through the fixture's environment.
    env_client = boto3.client("s3")
    listed = env_client.list_objects_v2(Bucket="site-uploads")
    assert [o["Key"] for o in listed["Contents"]] == ["incoming/a.dcm"]
    obj = env_client.get_object(Bucket="site-uploads", Key="incoming/a.dcm")
    assert (obj["Body"].read(), obj["Metadata"]) == (b"DICM", {"site": "1"})
    s3_server.reset()
    assert s3.list_buckets()["Buckets"] == []


# --- Lifecycle -----------------------------------------------------------------------------


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("server_class", [OrthancServer, FhirServer])
def test_stop_leaves_no_process_or_temp_dir(server_class: type[OrthancServer | FhirServer]) -> None:
    server = server_class().start()
    pid, workdir = server.pid, server.workdir
    assert pid is not None
    assert _group_alive(pid)
    server.stop()
    assert not _group_alive(pid)
    assert not workdir.exists()
    server.stop()  # stopping twice is harmless


def test_failed_start_reports_the_server_log(tmp_path: Path) -> None:
    not_a_plugin = tmp_path / "libNotAPlugin.so"
    not_a_plugin.write_text("not a shared library")
    server = OrthancServer(plugin=not_a_plugin)
    with pytest.raises(ServerStartError, match=r"exited with code .*\n(.|\n)*libNotAPlugin"):
        server.start()
    assert server.pid is None  # nothing left running
    assert server.log_path.exists()  # kept for reading after a failed start
    server.stop()
    assert not server.workdir.exists()


def test_orthanc_retries_when_its_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    import imaging_dev.servers.orthanc as orthanc_module

    with socket.socket() as squatter:  # another process took the probed port first
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken, free_port()])
        monkeypatch.setattr(orthanc_module, "free_port", lambda: next(ports))
        with OrthancServer() as server:
            assert server.port != taken
            assert requests.get(f"{server.url}/system", timeout=5).status_code == 200


_STARTS_AND_HANGS = """
import sys, time
from imaging_dev.servers.orthanc import OrthancServer
print(OrthancServer().start().pid, flush=True)
time.sleep(120)
"""


def test_orthanc_dies_with_a_parent_that_was_killed_outright() -> None:
    # SIGKILL skips stop() and atexit; the orphan watch must still end Orthanc.
    parent = subprocess.Popen(
        [sys.executable, "-c", _STARTS_AND_HANGS],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        pgid = int(parent.stdout.readline())
        assert _group_alive(pgid)
    finally:
        parent.kill()
        parent.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
        pytest.fail("Orthanc outlived the process that started it")
