"""modules/healthcare_stores.py alone: dataset, DICOM and FHIR R4 stores, notifications, grants."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules.healthcare_stores import (
    DICOM_READER,
    DICOM_WRITER,
    FHIR_RESOURCE_EDITOR,
    HealthcareStores,
)
from tests.support.scratch_stack import synth

PROCESSOR = "serviceAccount:process@p-1.iam.gserviceaccount.com"
INGEST = "serviceAccount:ingest@p-1.iam.gserviceaccount.com"
KEY = "projects/p-1/locations/eu/keyRings/r/cryptoKeys/k"


def build(scope: Construct) -> dict[str, Any]:
    stores = HealthcareStores(
        scope,
        "healthcare",
        name="imaging",
        location="europe-west4",
        time_zone="UTC",
        dicom_topic="projects/p-1/topics/dicom-events",
        fhir_topic="projects/p-1/topics/fhir-changes",
        labels={"environment": "prod"},
        kms_key=KEY,
        protect=True,
    )
    stores.grant_dicom_read(PROCESSOR)
    stores.grant_dicom_write(INGEST)
    stores.grant_fhir_resource_edit(PROCESSOR)
    return {
        "dicom_store_path": stores.dicom_store_path,
        "dicomweb_url": stores.dicomweb_url,
        "fhir_base_url": stores.fhir_base_url,
    }


def test_stores_notifications_protection_and_grants() -> None:
    out = synth(build)
    dataset = out.one("google_healthcare_dataset")
    dicom = out.one("google_healthcare_dicom_store")
    fhir = out.one("google_healthcare_fhir_store")
    assert dataset.body["encryption_spec"] == {"kms_key_name": KEY}
    for resource in (dataset, dicom, fhir):
        assert resource.body["lifecycle"]["prevent_destroy"] is True
    assert dicom.body["dataset"] == fhir.body["dataset"] == out.ref(dataset, "id")
    assert dicom.body["notification_config"]["pubsub_topic"] == "projects/p-1/topics/dicom-events"
    assert fhir.body["version"] == "R4"
    assert fhir.body["notification_configs"][0]["pubsub_topic"] == (
        "projects/p-1/topics/fhir-changes"
    )
    dicom_id, fhir_id = out.ref(dicom, "id"), out.ref(fhir, "id")
    assert out.bindings() == {
        (dicom_id, DICOM_READER, PROCESSOR),
        (dicom_id, DICOM_WRITER, INGEST),
        (fhir_id, FHIR_RESOURCE_EDITOR, PROCESSOR),
    }
    api = "https://healthcare.googleapis.com/v1"
    assert out.outputs == {
        "dicom_store_path": dicom_id,
        "dicomweb_url": f"{api}/{dicom_id}/dicomWeb",
        "fhir_base_url": f"{api}/{fhir_id}/fhir",
    }
