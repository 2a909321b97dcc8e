"""The Cloud Healthcare dataset with its DICOM store (images) and FHIR R4 store (results)."""

from __future__ import annotations

from cdktn import TerraformResourceLifecycle
from cdktn_provider_google.healthcare_dataset import HealthcareDataset
from cdktn_provider_google.healthcare_dicom_store import HealthcareDicomStore
from cdktn_provider_google.healthcare_dicom_store_iam_member import (
    HealthcareDicomStoreIamMember,
)
from cdktn_provider_google.healthcare_fhir_store import (
    HealthcareFhirStore,
    HealthcareFhirStoreNotificationConfigs,
)
from cdktn_provider_google.healthcare_fhir_store_iam_member import (
    HealthcareFhirStoreIamMember,
)
from constructs import Construct

API = "https://healthcare.googleapis.com/v1"
DICOM_READER = "roles/healthcare.dicomViewer"
DICOM_WRITER = "roles/healthcare.dicomEditor"
FHIR_RESOURCE_EDITOR = "roles/healthcare.fhirResourceEditor"


class HealthcareStores(Construct):
    """Dataset, DICOM store and FHIR R4 store, with notifications to Pub/Sub.

    The DICOM store notifies `dicom_topic` (message data = the instance path) also for bulk
    imports; the FHIR store notifies `fhir_topic` of every resource change. With
    `protect`, Terraform refuses to destroy any of the three (prevent_destroy).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        location: str,
        time_zone: str,
        dicom_topic: str,
        fhir_topic: str,
        labels: dict[str, str],
        kms_key: str | None = None,
        protect: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        lifecycle = TerraformResourceLifecycle(prevent_destroy=protect)
        self.dataset = HealthcareDataset(
            self,
            "dataset",
            name=name,
            location=location,
            time_zone=time_zone,
            encryption_spec={"kms_key_name": kms_key} if kms_key else None,
            lifecycle=lifecycle,
        )
        self.dicom_store = HealthcareDicomStore(
            self,
            "dicom",
            name=f"{name}-dicom",
            dataset=self.dataset.id,
            notification_config={"pubsub_topic": dicom_topic, "send_for_bulk_import": True},
            labels=labels,
            lifecycle=lifecycle,
        )
        self.fhir_store = HealthcareFhirStore(
            self,
            "fhir",
            name=f"{name}-fhir",
            dataset=self.dataset.id,
            version="R4",
            # The processor PUTs results with client-assigned ids (idempotent on retries).
            enable_update_create=True,
            disable_referential_integrity=False,
            notification_configs=[
                HealthcareFhirStoreNotificationConfigs(
                    pubsub_topic=fhir_topic, send_full_resource=False
                )
            ],
            labels=labels,
            lifecycle=lifecycle,
        )
        self._grants = 0

    @property
    def dicom_store_path(self) -> str:
        """`projects/P/locations/L/datasets/D/dicomStores/S` (the store's id in Terraform)."""
        return self.dicom_store.id

    @property
    def dicomweb_url(self) -> str:
        return f"{API}/{self.dicom_store.id}/dicomWeb"

    @property
    def fhir_store_path(self) -> str:
        return self.fhir_store.id

    @property
    def fhir_base_url(self) -> str:
        return f"{API}/{self.fhir_store.id}/fhir"

    def grant_dicom_read(self, member: str) -> HealthcareDicomStoreIamMember:
        return self._dicom(DICOM_READER, member)

    def grant_dicom_write(self, member: str) -> HealthcareDicomStoreIamMember:
        return self._dicom(DICOM_WRITER, member)

    def grant_fhir_resource_edit(self, member: str) -> HealthcareFhirStoreIamMember:
        self._grants += 1
        return HealthcareFhirStoreIamMember(
            self,
            f"grant_{self._grants}",
            fhir_store_id=self.fhir_store.id,
            role=FHIR_RESOURCE_EDITOR,
            member=member,
        )

    def grant_fhir(self, role: str, member: str) -> HealthcareFhirStoreIamMember:
        """Any role on the FHIR store (e.g. a custom role narrower than the predefined ones)."""
        self._grants += 1
        return HealthcareFhirStoreIamMember(
            self,
            f"grant_{self._grants}",
            fhir_store_id=self.fhir_store.id,
            role=role,
            member=member,
        )

    def _dicom(self, role: str, member: str) -> HealthcareDicomStoreIamMember:
        self._grants += 1
        return HealthcareDicomStoreIamMember(
            self,
            f"grant_{self._grants}",
            dicom_store_id=self.dicom_store.id,
            role=role,
            member=member,
        )
