"""Helpers for the process-function tests and bench/e2e: synthetic instances, the messages
Google's DICOM store publishes, and functions-framework serving the real entry point.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pydicom
import requests
from imaging_pipeline import events
from imaging_pipeline.telemetry import Event
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from imaging_dev.servers.function_server import FunctionServer

# The local store name stands for Orthanc: same path form as a Cloud Healthcare DICOM store.
LOCAL_STORE = "projects/local-project/locations/local/datasets/local/dicomStores/orthanc"
ALERTS_TOPIC = "projects/local-project/topics/imaging-critical-alerts"
SUBSCRIPTION = "projects/local-project/subscriptions/imaging-processor"
# Synthetic identity written into every test instance, so the no-PHI test can look for it.
PHI = {
    "PatientName": "Zzyzx^Quintessa",
    "PatientID": "PHI-7734921",
    "PatientBirthDate": "19610203",
    "OtherPatientIDs": "MRN-55501234",
}
PHI_STRINGS = ("Zzyzx", "Quintessa", "PHI-7734921", "19610203", "MRN-55501234")
OUTCOME_EVENTS = (
    Event.INSTANCE_PROCESSED,
    Event.INSTANCE_SKIPPED,
    Event.INSTANCE_FAILED,
    Event.INSTANCE_RETRY,
)
DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"
CR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1"

LOCAL_SETTINGS: dict[str, Any] = {
    "analyzer": "local",
    "rules": [
        {
            "name": "burned-in-text",
            "finding": "burned_in_text",
            "min_score": 0.6,
            "priority": "urgent",
        },
        {"name": "blank-image", "finding": "blank_image", "min_score": 0.9, "priority": "urgent"},
        {
            "name": "critical-words",
            "finding": "text",
            "terms": ["pneumothorax"],
            "min_score": 0.5,
            "priority": "critical",
        },
        {
            "name": "critical-labels",
            "finding": "label",
            "terms": ["fracture"],
            "min_score": 0.8,
            "priority": "critical",
        },
    ],
}


def with_phi(ds: Dataset, *, new_uids: bool = True) -> Dataset:
    """The dataset with our synthetic patient identity (and fresh UIDs: no cross-test clashes)."""
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    if new_uids:
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def sample(name: str) -> Dataset:
    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(f"pydicom test file {name} is not bundled")
    return with_phi(pydicom.dcmread(path))


def projection(
    modality: Literal["DX", "CR"] = "DX", text: str | None = None, size: int = 512, seed: int = 0
) -> Dataset:
    """A synthetic 12-bit projection radiograph (DX or CR), optionally with burned-in text."""
    y, x = np.mgrid[0:size, 0:size]
    body = np.exp(-(((x - size / 2) / (size / 4)) ** 2 + ((y - size / 2) / (size / 3)) ** 2))
    image = 1200 + 800 * body + np.random.default_rng(seed).normal(0, 30, body.shape)
    if text:
        canvas = Image.new("L", (size, size), 0)
        ImageDraw.Draw(canvas).text(
            (size // 25, size // 25),
            text,
            fill=255,
            font=ImageFont.load_default(size=max(16, size // 20)),
        )
        image[np.asarray(canvas) > 128] = 4000
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DX_SOP_CLASS if modality == "DX" else CR_SOP_CLASS
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = modality
    ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.InstanceNumber = "20250102", "0930", 1, 1
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.clip(image, 0, 4095).astype(np.uint16).tobytes()
    return with_phi(ds)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def upload(orthanc_url: str, ds: Dataset) -> None:
    """Store the instance in Orthanc (its REST API; STOW-RS would do the same)."""
    response = requests.post(f"{orthanc_url}/instances", data=to_bytes(ds), timeout=30)
    response.raise_for_status()


def instance_path(ds: Dataset, store: str = LOCAL_STORE) -> str:
    return events.instance_path(store, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


def pubsub_message(
    path: str | bytes, attributes: Mapping[str, str] | None = None, message_id: str | None = None
) -> dict[str, Any]:
    raw = path.encode() if isinstance(path, str) else path
    return {
        "data": base64.b64encode(raw).decode(),
        "attributes": dict(attributes or {}),
        "messageId": message_id or str(uuid.uuid4().int)[:16],
        "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def push_envelope(message: Mapping[str, Any]) -> dict[str, Any]:
    """What a push subscription POSTs to its endpoint."""
    return {"message": dict(message), "subscription": SUBSCRIPTION}


def cloud_event_headers(message: Mapping[str, Any]) -> dict[str, str]:
    """Binary-mode CloudEvent headers as Eventarc sends them for a Pub/Sub message."""
    return {
        "ce-id": str(message["messageId"]),
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/local-project/topics/dicom-events",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-time": str(message["publishTime"]),
        "Content-Type": "application/json",
    }


def structured_cloud_event(message: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(message["messageId"]),
        "source": "//pubsub.googleapis.com/projects/local-project/topics/dicom-events",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "datacontenttype": "application/json",
        "time": str(message["publishTime"]),
        "data": push_envelope(message),
    }


class ProcessFunction(FunctionServer):
    """functions-framework serving `process_dicom_instance` from handlers/main.py."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__("process_dicom_instance", env)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def outcomes(self) -> list[dict[str, Any]]:
        return [e for e in self.json_logs() if e.get("event") in OUTCOME_EVENTS]

    def push(self, message: Mapping[str, Any], *, timeout: float = 120) -> requests.Response:
        """POST a Pub/Sub push envelope, as a push subscription does."""
        return requests.post(self.url, json=push_envelope(message), timeout=timeout)


def function_env(
    *,
    dicomweb_url: str,
    fhir_base_url: str,
    pubsub_host: str,
    settings: Mapping[str, Any] | None = None,
    vision_url: str | None = None,
    store: str = LOCAL_STORE,
) -> dict[str, str]:
    env = {
        "DICOMWEB_URL": dicomweb_url,
        "DICOM_STORE": store,
        "FHIR_BASE_URL": fhir_base_url,
        "ALERTS_TOPIC": ALERTS_TOPIC,
        "PIPELINE_SETTINGS": json.dumps(settings if settings is not None else LOCAL_SETTINGS),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "INFO",
        "PUBSUB_EMULATOR_HOST": pubsub_host,
    }
    if vision_url:
        env["VISION_ENDPOINT"] = vision_url
    return env


def fhir_count(base_url: str, resource_type: str, **params: str) -> int:
    response = requests.get(
        f"{base_url}/{resource_type}", params={"_summary": "count", **params}, timeout=10
    )
    response.raise_for_status()
    return int(response.json().get("total", 0))


def fhir_search(base_url: str, resource_type: str, **params: str) -> list[dict[str, Any]]:
    response = requests.get(f"{base_url}/{resource_type}", params=params, timeout=10)
    response.raise_for_status()
    return [e["resource"] for e in response.json().get("entry", [])]
