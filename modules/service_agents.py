"""E-mail addresses of the Google-managed service agents the pipeline grants roles to."""

from __future__ import annotations

from cdktn_provider_google.data_google_project import DataGoogleProject
from cdktn_provider_google.data_google_storage_project_service_account import (
    DataGoogleStorageProjectServiceAccount,
)
from constructs import Construct


class ServiceAgents(Construct):
    """IAM members of the Healthcare, Pub/Sub and Cloud Storage service agents of the project.

    The Healthcare and Pub/Sub agents have fixed addresses derived from the project number;
    the Storage agent is read from its data source, which also makes Google create it.
    """

    def __init__(self, scope: Construct, id_: str, *, project_id: str) -> None:
        super().__init__(scope, id_)
        self._project = DataGoogleProject(self, "project", project_id=project_id)
        self._storage = DataGoogleStorageProjectServiceAccount(self, "storage", project=project_id)

    @property
    def project_number(self) -> str:
        return self._project.number

    @property
    def healthcare(self) -> str:
        return self._agent("gcp-sa-healthcare")

    @property
    def pubsub(self) -> str:
        return self._agent("gcp-sa-pubsub")

    @property
    def iap(self) -> str:
        """Identity-Aware Proxy's agent: it invokes the services IAP fronts."""
        return self._agent("gcp-sa-iap")

    def _agent(self, domain: str) -> str:
        return f"serviceAccount:service-{self.project_number}@{domain}.iam.gserviceaccount.com"

    @property
    def storage(self) -> str:
        return self._storage.member
