"""The Cloud Healthcare dataset with its DICOM store (images) and FHIR R4 store (results).

The stores publish notifications as the Healthcare service agent: this module grants it
publish on the topics it is given and makes the stores wait for those grants; an encrypted
dataset waits until its key is usable by the same agent. Grants to callers are keyed by names
they choose, so Terraform addresses never depend on call order.
"""

from __future__ import annotations

from typing import Protocol

from cdktn import ITerraformDependable, TerraformResourceLifecycle
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
from cdktn_provider_google.project_iam_custom_role import ProjectIamCustomRole
from constructs import Construct

API = "https://healthcare.googleapis.com/v1"
DICOM_READER = "roles/healthcare.dicomViewer"
# DICOMweb store and retrieve, nothing else: dicomEditor would add delete and export.
DICOMWEB_WRITE_PERMISSIONS = (
    "healthcare.dicomStores.dicomWebRead",
    "healthcare.dicomStores.dicomWebWrite",
)
FHIR_RESOURCE_EDITOR = "roles/healthcare.fhirResourceEditor"
AGENT_KEY = "healthcare-agent"


class NotificationTopic(Protocol):
    """A Pub/Sub topic (modules.messaging.Topic has this shape)."""

    @property
    def id(self) -> str: ...

    def grant_publish(self, key: str, member: str) -> ITerraformDependable: ...


class Key(Protocol):
    """A customer-managed key (modules.encryption_keys.EncryptionKey has this shape)."""

    @property
    def id(self) -> str: ...

    def usable_by(self, key: str, member: str) -> list[ITerraformDependable]: ...


class HealthcareStores(Construct):
    """Dataset, DICOM store and FHIR R4 store, with notifications to Pub/Sub.

    The DICOM store notifies `dicom_topic` (message data = the instance path) also for bulk
    imports; the FHIR store notifies `fhir_topic` of every resource change; both as
    `service_agent`, the project's Healthcare service agent. With `protect`, Terraform refuses
    to destroy any of the three (prevent_destroy).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        location: str,
        time_zone: str,
        dicom_topic: NotificationTopic,
        fhir_topic: NotificationTopic,
        service_agent: str,
        labels: dict[str, str],
        kms_key: Key | None = None,
        protect: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self._name = name
        self._writer_role: ProjectIamCustomRole | None = None
        lifecycle = TerraformResourceLifecycle(prevent_destroy=protect)
        key_waits = kms_key.usable_by(AGENT_KEY, service_agent) if kms_key is not None else []
        self.dataset = HealthcareDataset(
            self,
            "dataset",
            name=name,
            location=location,
            time_zone=time_zone,
            encryption_spec={"kms_key_name": kms_key.id} if kms_key is not None else None,
            lifecycle=lifecycle,
            depends_on=key_waits or None,
        )
        self.dicom_store = HealthcareDicomStore(
            self,
            "dicom",
            name=f"{name}-dicom",
            dataset=self.dataset.id,
            notification_config={"pubsub_topic": dicom_topic.id, "send_for_bulk_import": True},
            labels=labels,
            lifecycle=lifecycle,
            depends_on=[dicom_topic.grant_publish(AGENT_KEY, service_agent)],
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
                    pubsub_topic=fhir_topic.id, send_full_resource=False
                )
            ],
            labels=labels,
            lifecycle=lifecycle,
            depends_on=[fhir_topic.grant_publish(AGENT_KEY, service_agent)],
        )

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

    def grant_dicom_read(self, key: str, member: str) -> HealthcareDicomStoreIamMember:
        return self._dicom(f"dicom_read_{key}", DICOM_READER, member)

    def grant_dicom_write(self, key: str, member: str) -> HealthcareDicomStoreIamMember:
        """STOW-RS (and WADO/QIDO) on the DICOM store only: a custom role of the two DICOMweb
        permissions, created with the first write grant, bound on the store."""
        return self._dicom(f"dicom_write_{key}", self._dicomweb_writer().id, member)

    def _dicomweb_writer(self) -> ProjectIamCustomRole:
        if self._writer_role is None:
            self._writer_role = ProjectIamCustomRole(
                self,
                "dicomweb_writer",
                role_id=f"{self._name.replace('-', '_')}_dicomweb_writer",
                title=f"DICOMweb writer ({self._name})",
                description="Store and retrieve DICOM instances over DICOMweb; no delete.",
                permissions=list(DICOMWEB_WRITE_PERMISSIONS),
            )
        return self._writer_role

    def grant_fhir_resource_edit(self, key: str, member: str) -> HealthcareFhirStoreIamMember:
        """`key` names the grant (its Terraform address): choose it, never derive it from order."""
        return HealthcareFhirStoreIamMember(
            self,
            f"fhir_edit_{key}",
            fhir_store_id=self.fhir_store.id,
            role=FHIR_RESOURCE_EDITOR,
            member=member,
        )

    def grant_fhir(self, key: str, role: str, member: str) -> HealthcareFhirStoreIamMember:
        """Any role on the FHIR store (e.g. a custom role narrower than the predefined ones)."""
        return HealthcareFhirStoreIamMember(
            self, f"fhir_{key}", fhir_store_id=self.fhir_store.id, role=role, member=member
        )

    def _dicom(self, id_: str, role: str, member: str) -> HealthcareDicomStoreIamMember:
        return HealthcareDicomStoreIamMember(
            self, id_, dicom_store_id=self.dicom_store.id, role=role, member=member
        )
