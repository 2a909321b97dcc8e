"""The ingest function against a real Cloud Storage emulator (through google-cloud-storage) and a
real DICOMweb server (Orthanc): every outcome, retries, and the deployed entry point over HTTP.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
import requests
from google.cloud import storage
from imaging_pipeline.adapters.dicomweb_stow import ATTEMPTS
from imaging_pipeline.errors import TransientError
from imaging_pipeline.ingest.handler import (
    FAILURE_DETAIL_KEY,
    FAILURE_REASON_KEY,
    SOURCE_GENERATION_KEY,
    STOW_OUTCOME_KEY,
    IngestResult,
    StagedObject,
    ingest_object,
)
from pydicom.data import get_testdata_file

from imaging_dev.servers.fault_proxy import FaultProxy
from imaging_dev.servers.function_server import FunctionServer
from imaging_dev.servers.gcs_emulator import GcsEmulator
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.synthetic import ct_series, mr_image

pytestmark = pytest.mark.integration
BUCKET = "staging"
LOCAL_STORE = "projects/local-project/locations/local/datasets/local/dicomStores/orthanc"


def _testfile(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None
    return Path(str(path)).read_bytes()


def _part10(dataset: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture
def store(orthanc: OrthancServer) -> Iterator[OrthancServer]:
    orthanc.reset()
    yield orthanc


@pytest.fixture
def bucket(gcs_emulator: GcsEmulator) -> storage.Bucket:
    return gcs_emulator.client().create_bucket(BUCKET)


@pytest.fixture
def ingest(gcs_emulator: GcsEmulator, store: OrthancServer) -> Callable[..., IngestResult]:
    client = gcs_emulator.client()
    session = requests.Session()

    def run(blob: storage.Blob, *, dicomweb_url: str | None = None) -> IngestResult:
        obj = StagedObject(BUCKET, blob.name, int(blob.generation))
        return ingest_object(
            obj,
            storage_client=client,
            session=session,
            dicomweb_url=dicomweb_url or store.dicomweb_url,
        )

    return run


def _upload(bucket: storage.Bucket, name: str, payload: bytes) -> storage.Blob:
    blob = bucket.blob(name)
    blob.upload_from_string(payload, content_type="application/dicom")
    blob.reload()
    return blob


def _names(bucket: storage.Bucket) -> list[str]:
    return sorted(b.name for b in bucket.client.list_blobs(bucket.name))


def _store_has(store: OrthancServer, sop_instance_uid: str) -> bool:
    response = requests.get(
        f"{store.dicomweb_url}/instances", params={"SOPInstanceUID": sop_instance_uid}, timeout=10
    )
    return response.status_code == 200 and len(response.json()) == 1


def test_valid_instance_is_stored_and_moved_to_processed(bucket, ingest, store) -> None:
    payload = _testfile("CT_small.dcm")
    blob = _upload(bucket, "incoming/site-a/ct.dcm", payload)

    result = ingest(blob)

    assert result.outcome == "processed" and result.stow == "stored"
    assert _names(bucket) == ["processed/site-a/ct.dcm"]
    moved = bucket.get_blob("processed/site-a/ct.dcm")
    assert moved.download_as_bytes() == payload
    assert moved.metadata[SOURCE_GENERATION_KEY] == str(blob.generation)
    assert moved.metadata[STOW_OUTCOME_KEY] == "stored"
    assert _store_has(store, pydicom.dcmread(io.BytesIO(payload)).SOPInstanceUID)


def test_not_dicom_goes_to_failed_with_reason(bucket, ingest, store) -> None:
    blob = _upload(bucket, "incoming/notes.txt", b"this is a referral letter, not an image\n")

    result = ingest(blob)

    assert result.outcome == "failed" and result.reason == "not_dicom"
    assert _names(bucket) == ["failed/notes.txt"]
    failed = bucket.get_blob("failed/notes.txt")
    assert failed.metadata[FAILURE_REASON_KEY] == "not_dicom"
    assert failed.metadata[FAILURE_DETAIL_KEY]
    assert failed.download_as_bytes() == b"this is a referral letter, not an image\n"
    assert store.study_count() == 0


def test_corrupt_dicom_goes_to_failed_with_reason(bucket, ingest, store) -> None:
    blob = _upload(bucket, "incoming/mr-truncated.dcm", _testfile("MR_truncated.dcm"))

    result = ingest(blob)

    assert result.outcome == "failed" and result.reason == "corrupt"
    assert bucket.get_blob("failed/mr-truncated.dcm").metadata[FAILURE_REASON_KEY] == "corrupt"
    assert _names(bucket) == ["failed/mr-truncated.dcm"]
    assert store.study_count() == 0


def test_instance_the_store_rejects_goes_to_failed(bucket, ingest, store) -> None:
    # Valid DICOM for pydicom, but without a Study Instance UID no store can file it.
    dataset = mr_image(seed="rejected").dataset
    del dataset.StudyInstanceUID
    blob = _upload(bucket, "incoming/no-study.dcm", _part10(dataset))

    result = ingest(blob)

    assert result.outcome == "failed" and result.reason == "rejected_by_store"
    failed = bucket.get_blob("failed/no-study.dcm")
    assert failed.metadata[FAILURE_REASON_KEY] == "rejected_by_store"
    assert "HTTP 400" in failed.metadata[FAILURE_DETAIL_KEY]


def test_duplicate_instance_counts_as_success(bucket, ingest, store) -> None:
    payload = _part10(ct_series(seed="dup", slices=1)[0].dataset)
    first = ingest(_upload(bucket, "incoming/first/ct.dcm", payload))
    second = ingest(_upload(bucket, "incoming/again/ct.dcm", payload))

    assert (first.outcome, second.outcome) == ("processed", "processed")
    assert _names(bucket) == ["processed/again/ct.dcm", "processed/first/ct.dcm"]
    assert store.study_count() == 1


def test_duplicate_answered_409_like_the_healthcare_api(bucket, ingest, store, fault_proxy) -> None:
    # Google's store answers 409 for an instance it has; we confirm with QIDO and succeed.
    payload = _part10(ct_series(seed="conflict", slices=1)[0].dataset)
    ingest(_upload(bucket, "incoming/a.dcm", payload))
    proxy: FaultProxy = fault_proxy(store.url)
    proxy.fail_next(1, status=409)

    result = ingest(
        _upload(bucket, "incoming/b.dcm", payload), dicomweb_url=f"{proxy.url}/dicom-web"
    )

    assert result.outcome == "processed" and result.stow == "already_present"
    assert bucket.get_blob("processed/b.dcm").metadata[STOW_OUTCOME_KEY] == "already_present"


def test_409_for_an_instance_the_store_lacks_is_a_rejection(
    bucket, ingest, store, fault_proxy
) -> None:
    proxy: FaultProxy = fault_proxy(store.url)
    proxy.fail_next(1, status=409)
    blob = _upload(bucket, "incoming/c.dcm", _part10(mr_image(seed="409").dataset))

    result = ingest(blob, dicomweb_url=f"{proxy.url}/dicom-web")

    assert result.outcome == "failed" and result.reason == "rejected_by_store"


def test_objects_outside_incoming_are_ignored(bucket, ingest, store) -> None:
    payload = _testfile("CT_small.dcm")
    blobs = [
        _upload(bucket, name, payload)
        for name in ("processed/x.dcm", "failed/y.dcm", "other/z.dcm", "incomingx.dcm")
    ]

    assert [ingest(blob).outcome for blob in blobs] == ["ignored"] * 4
    assert _names(bucket) == ["failed/y.dcm", "incomingx.dcm", "other/z.dcm", "processed/x.dcm"]
    assert store.study_count() == 0


def test_retried_event_after_success_moves_nothing_twice(bucket, ingest, store) -> None:
    blob = _upload(bucket, "incoming/ct.dcm", _testfile("CT_small.dcm"))
    assert ingest(blob).outcome == "processed"

    again = ingest(blob)  # Eventarc redelivers the same event (same generation)

    assert again.outcome == "gone"
    assert _names(bucket) == ["processed/ct.dcm"]


def test_retry_after_a_crash_between_copy_and_delete_completes_the_move(
    bucket, ingest, store
) -> None:
    payload = _testfile("MR_small.dcm")
    blob = _upload(bucket, "incoming/mr.dcm", payload)
    # The first attempt stored the instance and copied the object, then died before the delete.
    bucket.copy_blob(blob, bucket, "processed/mr.dcm")
    ingest(blob)

    assert _names(bucket) == ["processed/mr.dcm"]
    assert bucket.get_blob("processed/mr.dcm").download_as_bytes() == payload
    assert bucket.get_blob("processed/mr.dcm").metadata[STOW_OUTCOME_KEY] in (
        "stored",
        "already_present",
    )


def test_same_name_with_other_bytes_never_overwrites_an_earlier_object(
    bucket, ingest, store
) -> None:
    first = _testfile("CT_small.dcm")
    ingest(_upload(bucket, "incoming/scan.dcm", first))
    second_blob = _upload(bucket, "incoming/scan.dcm", _testfile("MR_small.dcm"))

    result = ingest(second_blob)

    assert result.destination == f"processed/scan.{second_blob.generation}.dcm"
    assert bucket.get_blob("processed/scan.dcm").download_as_bytes() == first
    assert len(_names(bucket)) == 2


def test_transient_store_failure_raises_and_leaves_the_object(
    bucket, ingest, store, fault_proxy
) -> None:
    proxy: FaultProxy = fault_proxy(store.url)
    proxy.fail_next(ATTEMPTS, status=503)  # every in-process attempt fails
    blob = _upload(bucket, "incoming/ct.dcm", _testfile("CT_small.dcm"))

    with pytest.raises(TransientError):
        ingest(blob, dicomweb_url=f"{proxy.url}/dicom-web")

    assert _names(bucket) == ["incoming/ct.dcm"]  # untouched: the redelivery will retry
    assert store.study_count() == 0
    assert ingest(blob, dicomweb_url=f"{proxy.url}/dicom-web").outcome == "processed"


def test_deployed_entry_point_over_http(gcs_emulator, bucket, store) -> None:
    """functions-framework serving handlers/main.py, a binary CloudEvent as Eventarc sends."""
    env = {
        "DICOMWEB_URL": store.dicomweb_url,
        "DICOM_STORE": LOCAL_STORE,
        "STAGING_BUCKET": BUCKET,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "INFO",
        "STORAGE_EMULATOR_HOST": gcs_emulator.url,
    }
    dataset = mr_image(seed="phi").dataset
    dataset.PatientName, dataset.PatientID = "Zzyzx^Quintessa", "PHI-7734921"
    good = _upload(bucket, "incoming/ct.dcm", _part10(dataset))
    bad = _upload(bucket, "incoming/readme.md", b"# not an image")
    with FunctionServer("ingest_dicom_object", env) as function:
        for i, blob in enumerate((good, bad, good)):  # the third is a redelivery
            response = function.post_cloud_event(
                "google.cloud.storage.object.v1.finalized",
                f"//storage.googleapis.com/projects/_/buckets/{BUCKET}",
                {
                    "bucket": BUCKET,
                    "name": blob.name,
                    "generation": str(blob.generation),
                    "metageneration": "1",
                    "contentType": blob.content_type,
                },
                event_id=f"evt-{i}",
                subject=f"objects/{blob.name}",
            )
            assert response.status_code == 200, response.text
        logs = [e for e in function.json_logs() if e.get("event") == "ingest"]
        everything = function.log_path.read_text()
    assert _names(bucket) == ["failed/readme.md", "processed/ct.dcm"]
    assert [e["outcome"] for e in logs] == ["processed", "failed", "gone"]
    assert logs[0]["sop_instance_uid"] == dataset.SOPInstanceUID
    for phi in ("Zzyzx", "Quintessa", "PHI-7734921"):  # no line of any logger names the patient
        assert phi not in everything


def test_event_for_an_overwritten_generation_leaves_the_newer_upload_alone(
    bucket, ingest, store
) -> None:
    old = _upload(bucket, "incoming/scan.dcm", _testfile("CT_small.dcm"))
    new = _upload(bucket, "incoming/scan.dcm", _testfile("MR_small.dcm"))  # same name, later

    assert ingest(old).outcome == "gone"  # that generation no longer exists
    assert _names(bucket) == ["incoming/scan.dcm"]
    assert store.study_count() == 0

    result = ingest(new)  # the newer upload's own event
    assert result.outcome == "processed"
    assert bucket.get_blob("processed/scan.dcm").metadata[SOURCE_GENERATION_KEY] == str(
        new.generation
    )


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (b"same bytes", "processed/race.dcm"),  # another delivery of this event copied first
        (b"other bytes", None),  # another upload's object: never overwritten
    ],
)
def test_copy_race_is_settled_by_the_destination_precondition(
    bucket, existing, expected, monkeypatch
) -> None:
    from imaging_pipeline.adapters.gcs_move import SourceVersion, move_object

    source = _upload(bucket, "incoming/race.dcm", b"same bytes")
    bucket.blob("processed/race.dcm").upload_from_string(existing)
    # Our existence check runs before the concurrent copy lands: it sees nothing once.
    real_get_blob = bucket.get_blob
    seen: list[str] = []

    def racing_get_blob(name: str, *args, **kwargs):
        if name == "processed/race.dcm" and name not in seen:
            seen.append(name)
            return None
        return real_get_blob(name, *args, **kwargs)

    monkeypatch.setattr(bucket, "get_blob", racing_get_blob)

    result = move_object(bucket, SourceVersion.of(source), "race.dcm", "processed/", {})

    assert result.destination == (expected or f"processed/race.{source.generation}.dcm")
    assert result.copied is (expected is None)
    assert result.source_deleted
    assert real_get_blob("processed/race.dcm").download_as_bytes() == existing  # untouched
