"""`imaging backfill` end to end: QIDO-RS against Orthanc, messages into the local Pub/Sub."""

from __future__ import annotations

import base64
import io

import pytest
import requests
from imaging_pipeline.events import parse_event

from imaging_cli.main import main
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.servers.pubsub_emulator import PubSubEmulator
from imaging_dev.synthetic import STUDY_DATE, sample_files, study_set

pytestmark = pytest.mark.integration
STORE = "projects/local-project/locations/local/datasets/local/dicomStores/orthanc"
TOPIC = "projects/local-project/topics/dicom-notifications"
OLD_SAMPLES = ("CT_small.dcm", "MR_small.dcm")  # StudyDate 2004-01-19 and 2004-08-26


@pytest.fixture(scope="module")
def archive(orthanc: OrthancServer) -> dict[str, str]:
    """SOP Instance UID -> modality of everything stored: 8 synthetic (2026) + 2 old samples."""
    orthanc.reset()
    stored: dict[str, str] = {}
    for instance in study_set(seed="backfill"):
        out = io.BytesIO()
        instance.dataset.save_as(out, enforce_file_format=True)
        _put(orthanc, out.getvalue())
        stored[instance.dataset.SOPInstanceUID] = instance.modality
    for path in sample_files(OLD_SAMPLES):
        _put(orthanc, path.read_bytes())
    stored["1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"] = "CT"
    stored["1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"] = "MR"
    return stored


def _put(orthanc: OrthancServer, payload: bytes) -> None:
    requests.post(f"{orthanc.url}/instances", data=payload, timeout=30).raise_for_status()


def _backfill(orthanc: OrthancServer, *extra: str) -> int:
    return main(
        [
            "backfill",
            "--store",
            STORE,
            "--topic",
            TOPIC,
            "--dicomweb-url",
            orthanc.dicomweb_url,
            *extra,
        ]
    )


@pytest.fixture(autouse=True)
def topic(pubsub_emulator: PubSubEmulator) -> None:
    pubsub_emulator.create_topic(TOPIC)


def test_publishes_what_the_store_would_for_every_instance(
    orthanc, archive, pubsub_emulator, capsys
) -> None:
    assert _backfill(orthanc) == 0

    summary = capsys.readouterr().out.strip()
    assert summary == f"published: {len(archive)}  failed: 0  topic: {TOPIC}"
    messages = pubsub_emulator.published(TOPIC)
    assert len(messages) == len(archive)
    seen = {}
    for message in messages:
        # The processor's own parser accepts it, exactly as a store notification.
        event = parse_event(
            {
                "message": {
                    "data": base64.b64encode(message.data).decode(),
                    "attributes": message.attributes,
                    "messageId": message.message_id,
                }
            }
        )
        assert event.store == STORE and event.is_new_instance
        assert message.attributes["storeName"] == STORE
        seen[event.instance_uid] = message.attributes["modality"]
    assert seen == archive


def test_since_and_until_filter_on_study_date(orthanc, archive, pubsub_emulator, capsys) -> None:
    assert _backfill(orthanc, "--since", "2026-01-01") == 0
    recent = {parse_path(m.data) for m in pubsub_emulator.published(TOPIC)}
    pubsub_emulator.clear_published(TOPIC)
    assert _backfill(orthanc, "--until", "2010-12-31") == 0
    old = {parse_path(m.data) for m in pubsub_emulator.published(TOPIC)}
    pubsub_emulator.clear_published(TOPIC)
    assert _backfill(orthanc, "--since", "2026-01-16") == 0  # the day after the synthetic date
    none = pubsub_emulator.published(TOPIC)

    assert STUDY_DATE == "20260115"
    assert len(recent) == 8 and len(old) == 2 and none == []
    assert recent | old == set(archive)


def test_dry_run_lists_paths_and_publishes_nothing(
    orthanc, archive, pubsub_emulator, capsys
) -> None:
    assert _backfill(orthanc, "--dry-run", "--until", "2010-12-31") == 0

    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{STORE}/dicomWeb/studies/") for line in lines)
    assert "2 notification(s) would be published" in captured.err
    assert pubsub_emulator.published(TOPIC) == []


def test_publish_failures_are_counted_and_fail_the_run(
    orthanc, archive, pubsub_emulator: PubSubEmulator, capsys
) -> None:
    # A topic that does not exist: NOT_FOUND is not retried by the client, so every message
    # is lost and must be reported.
    pubsub_emulator.reset()

    assert _backfill(orthanc, "--until", "2010-12-31") == 1

    assert "published: 0  failed: 2" in capsys.readouterr().out


def test_invalid_arguments_exit_2(capsys) -> None:
    assert main(["backfill", "--store", "my-store", "--topic", TOPIC]) == 2
    assert main(["backfill", "--store", STORE, "--topic", "alerts"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["backfill", "--store", STORE, "--topic", TOPIC, "--since", "last week"])
    assert exited.value.code == 2


def parse_path(data: bytes) -> str:
    return data.decode().rsplit("/instances/", 1)[1]
