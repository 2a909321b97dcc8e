"""The Google-managed service agents the pipeline grants roles to, created before any grant.

Google creates service agents just in time, and "if a service agent hasn't been created yet,
then you can't grant roles to the service agent". So the Healthcare and Pub/Sub agents are
created here (`google_project_service_identity`, google-beta), and every grant references
their `member`, which makes it wait for them; the Cloud Storage agent is created by reading
its data source. Never build an agent's e-mail from the project number.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktn import TerraformProvider
from cdktn_provider_google.data_google_project import DataGoogleProject
from cdktn_provider_google.data_google_storage_project_service_account import (
    DataGoogleStorageProjectServiceAccount,
)
from cdktn_provider_google_beta.google_project_service_identity import (
    GoogleProjectServiceIdentity,
)
from constructs import Construct

AGENT_SERVICES = ("healthcare", "pubsub")


class ServiceAgents(Construct):
    """IAM members of the Healthcare, Pub/Sub and Cloud Storage service agents of the project.

    `beta_provider` is the google-beta provider of the stack (the resource that creates agents
    is beta-only)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        project_id: str,
        beta_provider: TerraformProvider,
        services: Sequence[str] = AGENT_SERVICES,
    ) -> None:
        super().__init__(scope, id_)
        self._project = DataGoogleProject(self, "project", project_id=project_id)
        self._storage = DataGoogleStorageProjectServiceAccount(self, "storage", project=project_id)
        self.identities = {
            service: GoogleProjectServiceIdentity(
                self,
                service,
                provider=beta_provider,
                project=project_id,
                service=f"{service}.googleapis.com",
            )
            for service in services
        }

    @property
    def project_number(self) -> str:
        return self._project.number

    @property
    def healthcare(self) -> str:
        return self.identities["healthcare"].member

    @property
    def pubsub(self) -> str:
        return self.identities["pubsub"].member

    @property
    def iap(self) -> str:
        """Identity-Aware Proxy's agent (it invokes the services IAP fronts); created only when
        `services` includes "iap"."""
        return self.identities["iap"].member

    @property
    def storage(self) -> str:
        return self._storage.member
