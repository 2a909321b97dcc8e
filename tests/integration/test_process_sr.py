"""The SR path end to end: the processor (functions-framework, real entry point) stores a TID
1500 SR into Orthanc with STOW-RS, FHIR lists and references it, a redelivery stores nothing
twice, the SR's own notification never loops, and a new analyzer version supersedes the SR.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pydicom
import pytest
import requests
from imaging_pipeline.analysis.local import LocalAnalyzer
from imaging_pipeline.events import parse_event
from imaging_pipeline.fhir.mapping import AnalyzerIdentity
from imaging_pipeline.process import Processor, handle_event_data
from imaging_pipeline.runtime_env import load_config
from imaging_pipeline.sr.build import SR_SOP_CLASS_UID, SourceImage, sr_identity
from imaging_pipeline.sr.read import read_report
from pydicom.dataset import Dataset

from imaging_cli.store_notifications import StoredInstance, notification
from imaging_dev.servers.fhir_server import FhirServer
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.servers.pubsub_emulator import PubSubEmulator
from tests.support.process import (
    ALERTS_TOPIC,
    LOCAL_STORE,
    ProcessFunction,
    fhir_count,
    fhir_search,
    function_env,
    instance_path,
    projection,
    pubsub_message,
    sample,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RESOURCE_TYPES = ("ImagingStudy", "DiagnosticReport", "Observation", "Device")


@pytest.fixture(scope="module")
def env(
    orthanc: OrthancServer, fhir_server: FhirServer, _pubsub_session: PubSubEmulator
) -> dict[str, str]:
    _pubsub_session.create_topic(ALERTS_TOPIC)  # the emulator, like Pub/Sub, needs it
    return function_env(
        dicomweb_url=orthanc.dicomweb_url,
        fhir_base_url=fhir_server.base_url,
        pubsub_host=_pubsub_session.host,
    )


@pytest.fixture(scope="module")
def function(env: dict[str, str]) -> Iterator[ProcessFunction]:
    with ProcessFunction(env) as server:
        yield server


def store(orthanc: OrthancServer, ds: Dataset) -> dict[str, Any]:
    upload(orthanc.url, ds)
    instance = StoredInstance(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SOPClassUID, ds.Modality
    )
    data, attributes = notification(instance, LOCAL_STORE)
    return pubsub_message(data, attributes)


def outcome_of(function: ProcessFunction, message: dict[str, Any]) -> dict[str, Any]:
    found = [o for o in function.outcomes() if o.get("message_id") == message["messageId"]]
    assert found, function.log_lines()[-20:]
    return found[-1]


def retrieve(orthanc: OrthancServer, study: str, series: str, instance: str) -> Dataset:
    response = requests.get(
        f"{orthanc.dicomweb_url}/studies/{study}/series/{series}/instances/{instance}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
        timeout=30,
    )
    response.raise_for_status()
    body = response.content
    start = body.index(b"DICM") - 128  # one part: the Part 10 file after its headers
    return pydicom.dcmread(io.BytesIO(body[start:]))


def series_instances(orthanc: OrthancServer, study: str, series: str) -> list[str]:
    response = requests.get(
        f"{orthanc.dicomweb_url}/studies/{study}/series/{series}/instances", timeout=30
    )
    if response.status_code == 204 or not response.content:
        return []
    return [i["00080018"]["Value"][0] for i in response.json()]


def counts(base_url: str) -> dict[str, int]:
    return {t: fhir_count(base_url, t) for t in RESOURCE_TYPES}


def test_sr_is_stored_read_back_equal_and_linked_from_fhir(
    function: ProcessFunction, orthanc: OrthancServer, fhir_server: FhirServer
) -> None:
    ds = projection("DX", text="STAT PNEUMOTHORAX", size=512, seed=11)
    message = store(orthanc, ds)
    assert function.push(message).status_code == 200
    outcome = outcome_of(function, message)
    assert outcome["outcome"] == "processed" and outcome["findings"], outcome
    identity = AnalyzerIdentity("imaging-pipeline-local-analyzer", LocalAnalyzer().version)
    ids = sr_identity(ds.StudyInstanceUID, ds.SOPInstanceUID, identity)

    # Orthanc accepted the STOW: the SR is in the source's study, in its own series.
    sr = retrieve(orthanc, ids.study_uid, ids.series_uid, ids.instance_uid)
    assert sr.SOPClassUID == SR_SOP_CLASS_UID and sr.Modality == "SR"
    report = read_report(sr, SourceImage(ds.Rows, ds.Columns))
    read = [r.finding.as_dict() for r in report.findings]
    logged = outcome["findings"]
    assert [f["kind"] for f in read] == [f["kind"] for f in logged]
    for got, expected in zip(read, logged, strict=True):
        assert got["description"] == expected["description"]
        assert got["score"] == pytest.approx(expected["score"], abs=1e-4)
        assert got.get("box") == pytest.approx(expected.get("box"), abs=1e-3)
    assert report.priority == outcome["priority"] == "critical"
    assert report.analyzer == (identity.name, identity.version)

    # FHIR: the ImagingStudy lists the SR's series and instance; the report references it.
    [study] = fhir_search(
        fhir_server.base_url,
        "ImagingStudy",
        identifier=f"urn:dicom:uid|urn:oid:{ds.StudyInstanceUID}",
    )
    sr_series = next(s for s in study["series"] if s["uid"] == ids.series_uid)
    assert sr_series["modality"]["code"] == "SR"
    assert [i["uid"] for i in sr_series["instance"]] == [ids.instance_uid]
    assert sr_series["instance"][0]["sopClass"]["code"] == f"urn:oid:{SR_SOP_CLASS_UID}"
    [diagnostic] = fhir_search(
        fhir_server.base_url,
        "DiagnosticReport",
        identifier=f"urn:dicom:uid|urn:oid:{ids.instance_uid}",
    )
    assert f"DiagnosticReport/{diagnostic['id']}" == outcome["report"]
    [form] = diagnostic["presentedForm"]
    assert form["contentType"] == "application/dicom"
    assert form["url"].endswith(
        f"/studies/{ids.study_uid}/series/{ids.series_uid}/instances/{ids.instance_uid}"
    )


def test_redelivery_stores_the_sr_once_and_creates_nothing(
    function: ProcessFunction, orthanc: OrthancServer, fhir_server: FhirServer
) -> None:
    ds = sample("CT_small.dcm")
    message = store(orthanc, ds)
    assert function.push(message).status_code == 200
    before = counts(fhir_server.base_url)
    identity = AnalyzerIdentity("imaging-pipeline-local-analyzer", LocalAnalyzer().version)
    ids = sr_identity(ds.StudyInstanceUID, ds.SOPInstanceUID, identity)
    assert series_instances(orthanc, ids.study_uid, ids.series_uid) == [ids.instance_uid]

    assert function.push(message).status_code == 200
    again = outcome_of(function, message)
    assert again["outcome"] == "processed" and again["fhir_created"] == 0
    assert series_instances(orthanc, ids.study_uid, ids.series_uid) == [ids.instance_uid]
    assert counts(fhir_server.base_url) == before


@pytest.mark.parametrize("attributes", ["as-the-store-sends-them", "none (an older store)"])
def test_the_srs_own_notification_never_loops(
    attributes: str, function: ProcessFunction, orthanc: OrthancServer, fhir_server: FhirServer
) -> None:
    ds = projection("CR", size=256, seed=12)
    assert function.push(store(orthanc, ds)).status_code == 200
    identity = AnalyzerIdentity("imaging-pipeline-local-analyzer", LocalAnalyzer().version)
    ids = sr_identity(ds.StudyInstanceUID, ds.SOPInstanceUID, identity)
    sr = retrieve(orthanc, ids.study_uid, ids.series_uid, ids.instance_uid)
    before = counts(fhir_server.base_url)
    study_srs = requests.get(
        f"{orthanc.dicomweb_url}/studies/{ids.study_uid}/instances",
        params={"Modality": "SR"},
        timeout=30,
    ).json()

    # The store's notification for the SR it just received.
    instance = StoredInstance(
        ids.study_uid, ids.series_uid, ids.instance_uid, SR_SOP_CLASS_UID, "SR"
    )
    data, attrs = notification(instance, LOCAL_STORE)
    if attributes.startswith("none"):
        attrs = {}
    message = pubsub_message(data, attrs)
    assert function.push(message).status_code == 200
    outcome = outcome_of(function, message)
    assert outcome["outcome"] == "skipped" and outcome["reason"] == "unsupported_sop_class"
    assert not outcome.get("findings") and "report" not in outcome  # never analyzed
    # With the store's attributes it is dropped on its modality; without (the legacy
    # notification config, which provider 8.7 still declares), on its series UID, which is
    # derived from the study and the analyzer's name. Both before any retrieval.
    expected = "non-image modality SR" if attrs else "our own DICOM SR series"
    assert outcome["detail"] == expected
    assert counts(fhir_server.base_url) == before  # no FHIR write
    after = requests.get(
        f"{orthanc.dicomweb_url}/studies/{ids.study_uid}/instances",
        params={"Modality": "SR"},
        timeout=30,
    ).json()
    assert len(after) == len(study_srs) == 1  # no second SR
    assert sr.SOPInstanceUID == ids.instance_uid


class _Versioned(LocalAnalyzer):
    """The offline analyzer under another version string (a new release of the same model)."""

    def __init__(self, version: str) -> None:
        super().__init__()
        self._version = version

    @property
    def version(self) -> str:
        return self._version


def test_a_new_analyzer_version_writes_a_new_sr_that_references_the_earlier(
    env: dict[str, str], orthanc: OrthancServer, fhir_server: FhirServer
) -> None:
    ds = projection("DX", size=256, seed=13)
    upload(orthanc.url, ds)
    data = pubsub_message(instance_path(ds), {"action": "StoreInstances"})
    config = load_config(env)
    first, second = _Versioned("1.0-test"), _Versioned("2.0-test")
    for analyzer in (first, second):
        outcome = handle_event_data(Processor(config, analyzer=analyzer), {"message": data})
        assert outcome.status == "processed"
    assert parse_event({"message": data}).instance_uid == ds.SOPInstanceUID
    old = sr_identity(
        ds.StudyInstanceUID, ds.SOPInstanceUID, AnalyzerIdentity(first.name, "1.0-test")
    )
    new = sr_identity(
        ds.StudyInstanceUID, ds.SOPInstanceUID, AnalyzerIdentity(first.name, "2.0-test")
    )
    assert old.series_uid == new.series_uid and old.instance_uid != new.instance_uid
    assert sorted(series_instances(orthanc, new.study_uid, new.series_uid)) == sorted(
        [old.instance_uid, new.instance_uid]
    )
    sr = retrieve(orthanc, new.study_uid, new.series_uid, new.instance_uid)
    [predecessor] = (
        sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    )
    assert predecessor.ReferencedSOPInstanceUID == old.instance_uid
    earlier = retrieve(orthanc, old.study_uid, old.series_uid, old.instance_uid)
    assert "PredecessorDocumentsSequence" not in earlier


def test_no_loop_when_the_store_notifies_the_processor_of_its_own_sr(
    fhir_server: FhirServer, pubsub_emulator: PubSubEmulator
) -> None:
    """The whole arrow: Orthanc publishes a notification for every stored instance (as the
    DICOM store does), a push subscription of Google's Pub/Sub emulator delivers it to the
    processor, which stores its SR back into Orthanc, whose notification comes back. The stack's
    subscription filter would drop it in Pub/Sub (evaluated here on the attributes the SR's
    notification really carried: the emulator ignores filters); the processor drops it too, on
    its `modality` attribute. Either way: one SR, one analysis, one FHIR report."""
    from imaging_pipeline.notification_filter import push_subscription_filter

    from tests.support.pubsub_filter import matches

    topic = "projects/local-project/topics/sr-loop"
    pubsub_emulator.create_topic(topic)
    pubsub_emulator.create_topic(ALERTS_TOPIC)
    with OrthancServer(
        notification_url=pubsub_emulator.publish_url(topic), store_name=LOCAL_STORE
    ) as orthanc:
        env = function_env(
            dicomweb_url=orthanc.dicomweb_url,
            fhir_base_url=fhir_server.base_url,
            pubsub_host=pubsub_emulator.host,
        )
        with ProcessFunction(env) as function:
            pubsub_emulator.create_push_subscription(
                "projects/local-project/subscriptions/sr-loop",
                topic,
                function.url,
                ack_deadline_seconds=120,
            )
            ds = projection("DX", text="STAT PNEUMOTHORAX", size=512, seed=14)
            upload(orthanc.url, ds)  # -> notification -> push -> SR stored -> notification
            messages = pubsub_emulator.wait_for_messages(topic, 2, timeout=120)
            identity = AnalyzerIdentity("imaging-pipeline-local-analyzer", LocalAnalyzer().version)
            ids = sr_identity(ds.StudyInstanceUID, ds.SOPInstanceUID, identity)
            deadline = time.monotonic() + 60
            while len(function.outcomes()) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2)  # a looping SR would have been pushed and stored by now
            outcomes = {o["instance_uid"]: o for o in function.outcomes()}
            published = pubsub_emulator.published(topic)

    assert [m.attributes["modality"] for m in messages] == ["DX", "SR"]
    assert messages[1].attributes["sopInstanceUID"] == ids.instance_uid
    # In Google Cloud the SR's notification never invokes the function; the image's does.
    expression = push_subscription_filter()
    assert not matches(expression, messages[1].attributes)
    assert matches(expression, messages[0].attributes)
    assert outcomes[ds.SOPInstanceUID]["outcome"] == "processed"
    sr_outcome = outcomes[ids.instance_uid]
    assert sr_outcome["outcome"] == "skipped"
    assert sr_outcome["detail"] == "non-image modality SR"
    assert len(outcomes) == 2
    assert len(published) == 2  # no second SR, so no third notification
    [report] = fhir_search(
        fhir_server.base_url,
        "DiagnosticReport",
        identifier=f"urn:dicom:uid|urn:oid:{ids.instance_uid}",
    )
    assert report["status"] == "preliminary"


def test_a_store_that_rejects_the_sr_still_gets_fhir_and_transient_failures_retry(
    env: dict[str, str],
    orthanc: OrthancServer,
    fhir_server: FhirServer,
    fault_proxy: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dataclasses import replace

    from imaging_pipeline.adapters.dicomweb import make_client
    from imaging_pipeline.errors import TransientError

    proxy = fault_proxy(orthanc.dicomweb_url)  # only the STOW goes through it
    config = replace(load_config(env), dicomweb_url=proxy.url)
    processor = Processor(config, dicomweb=make_client(orthanc.dicomweb_url))
    identity = AnalyzerIdentity("imaging-pipeline-local-analyzer", LocalAnalyzer().version)

    rejected = projection("DX", size=256, seed=15)
    upload(orthanc.url, rejected)
    proxy.fail_next(1, status=400)
    with caplog.at_level("WARNING", logger="imaging_pipeline.process"):
        outcome = handle_event_data(processor, {"message": pubsub_message(instance_path(rejected))})
    assert outcome.status == "processed" and outcome.report  # FHIR written regardless
    assert any(
        getattr(r, "fields", {}).get("event") == "structured_report_not_stored"
        for r in caplog.records
    )
    ids = sr_identity(rejected.StudyInstanceUID, rejected.SOPInstanceUID, identity)
    assert series_instances(orthanc, ids.study_uid, ids.series_uid) == []

    flaky = projection("DX", size=256, seed=16)
    upload(orthanc.url, flaky)
    message = pubsub_message(instance_path(flaky))
    proxy.fail_next(3, status=503)  # every in-process attempt of the STOW
    with pytest.raises(TransientError):
        handle_event_data(processor, {"message": message})
    assert handle_event_data(processor, {"message": message}).status == "processed"
    ids = sr_identity(flaky.StudyInstanceUID, flaky.SOPInstanceUID, identity)
    assert series_instances(orthanc, ids.study_uid, ids.series_uid) == [ids.instance_uid]


def test_an_image_of_a_sop_class_highdicom_does_not_know_gets_fhir_without_an_sr(
    env: dict[str, str], orthanc: OrthancServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A vendor's private image class renders and is analyzed, but highdicom cannot reference it
    in an SR (not in its IOD tables): the SR is skipped, the FHIR results still go out."""
    processor = Processor(load_config(env))
    private = projection("DX", size=256, seed=17)
    private.SOPClassUID = "1.2.826.0.1.3680043.9.9999.1"
    private.file_meta.MediaStorageSOPClassUID = private.SOPClassUID
    upload(orthanc.url, private)
    with caplog.at_level("WARNING", logger="imaging_pipeline.process"):
        outcome = handle_event_data(processor, {"message": pubsub_message(instance_path(private))})
    assert outcome.status == "processed" and outcome.report
    skipped = [
        getattr(r, "fields", {})
        for r in caplog.records
        if getattr(r, "fields", {}).get("event") == "structured_report_not_stored"
    ]
    assert skipped and skipped[0]["detail"] == "ValueError", skipped
