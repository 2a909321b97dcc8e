"""modules/healthcare_stores.py alone: dataset, DICOM and FHIR R4 stores, notifications sent as
the Healthcare agent once the topics granted it publish, a CMEK dataset that waits for its key,
and keyed grants."""

from __future__ import annotations

from typing import Any

from cdktn import ITerraformDependable
from cdktn_provider_time.sleep import Sleep
from constructs import Construct

from modules.healthcare_stores import (
    AGENT_KEY,
    DICOM_READER,
    DICOMWEB_WRITE_PERMISSIONS,
    FHIR_RESOURCE_EDITOR,
    HealthcareStores,
)
from tests.support.scratch_stack import synth

AGENT = "serviceAccount:service-1@gcp-sa-healthcare.iam.gserviceaccount.com"
PROCESSOR = "serviceAccount:process@p-1.iam.gserviceaccount.com"
INGEST = "serviceAccount:ingest@p-1.iam.gserviceaccount.com"
KEY = "projects/p-1/locations/eu/keyRings/r/cryptoKeys/k"


class Stub:
    """A topic (`grant_publish`) or a key (`usable_by`) with `id`: records each request and
    returns a resource standing for the grant, which the stores must wait for."""

    def __init__(self, scope: Construct, name: str, id_: str) -> None:
        self.scope, self.name, self.id = scope, name, id_
        self.asked: list[tuple[str, str]] = []

    def _grant(self, key: str, member: str) -> Sleep:
        self.asked.append((key, member))
        return Sleep(self.scope, f"{self.name}_{key}", create_duration="1s")

    def grant_publish(self, key: str, member: str) -> Sleep:
        return self._grant(key, member)

    def usable_by(self, key: str, member: str) -> list[ITerraformDependable]:
        return [self._grant(key, member)]


def build(scope: Construct) -> dict[str, Any]:
    dicom_topic = Stub(scope, "dicom_topic", "projects/p-1/topics/dicom-events")
    fhir_topic = Stub(scope, "fhir_topic", "projects/p-1/topics/fhir-changes")
    key = Stub(scope, "key", KEY)
    stores = HealthcareStores(
        scope,
        "healthcare",
        name="imaging",
        location="europe-west4",
        time_zone="UTC",
        dicom_topic=dicom_topic,
        fhir_topic=fhir_topic,
        service_agent=AGENT,
        labels={"environment": "prod"},
        kms_key=key,
        protect=True,
    )
    assert dicom_topic.asked == fhir_topic.asked == key.asked == [(AGENT_KEY, AGENT)]
    stores.grant_dicom_read("processor", PROCESSOR)
    stores.grant_dicom_write("ingest", INGEST)
    stores.grant_fhir_resource_edit("processor", PROCESSOR)
    return {
        "dicom_store_path": stores.dicom_store_path,
        "fhir_store_path": stores.fhir_store_path,
        "dicomweb_url": stores.dicomweb_url,
        "fhir_base_url": stores.fhir_base_url,
    }


def test_stores_notifications_protection_ordering_and_grants() -> None:
    out = synth(build)
    dataset = out.one("google_healthcare_dataset")
    dicom = out.one("google_healthcare_dicom_store")
    fhir = out.one("google_healthcare_fhir_store")
    waits = {w.key: w.address for w in out.of_type("time_sleep")}  # the stubs' (top level)
    assert dataset.body["encryption_spec"] == {"kms_key_name": KEY}
    assert dataset.body["depends_on"] == [waits[f"key_{AGENT_KEY}"]]
    assert dicom.body["depends_on"] == [waits[f"dicom_topic_{AGENT_KEY}"]]
    assert fhir.body["depends_on"] == [waits[f"fhir_topic_{AGENT_KEY}"]]
    for resource in (dataset, dicom, fhir):
        assert resource.body["lifecycle"]["prevent_destroy"] is True
    assert dicom.body["dataset"] == fhir.body["dataset"] == out.ref(dataset, "id")
    assert dicom.body["notification_config"] == {
        "pubsub_topic": "projects/p-1/topics/dicom-events",
        "send_for_bulk_import": True,
    }
    assert fhir.body["version"] == "R4"
    assert fhir.body["notification_configs"][0]["pubsub_topic"] == (
        "projects/p-1/topics/fhir-changes"
    )
    dicom_id, fhir_id = out.ref(dicom, "id"), out.ref(fhir, "id")
    # Writers get DICOMweb read and write only (no delete), on the DICOM store.
    writer = out.one("google_project_iam_custom_role")
    assert writer.body["permissions"] == list(DICOMWEB_WRITE_PERMISSIONS)
    assert out.bindings() == {
        (dicom_id, DICOM_READER, PROCESSOR),
        (dicom_id, out.ref(writer, "id"), INGEST),
        (fhir_id, FHIR_RESOURCE_EDITOR, PROCESSOR),
    }
    grant_ids = {
        g.key.rsplit("_", 1)[0]
        for t in (
            "google_healthcare_dicom_store_iam_member",
            "google_healthcare_fhir_store_iam_member",
        )
        for g in out.of_type(t)
    }
    assert grant_ids == {
        "healthcare_dicom_read_processor",
        "healthcare_dicom_write_ingest",
        "healthcare_fhir_edit_processor",
    }
    api = "https://healthcare.googleapis.com/v1"
    assert out.outputs == {
        "dicom_store_path": dicom_id,
        "fhir_store_path": fhir_id,
        "dicomweb_url": f"{api}/{dicom_id}/dicomWeb",
        "fhir_base_url": f"{api}/{fhir_id}/fhir",
    }
