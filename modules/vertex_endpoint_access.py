"""Prediction on the Vertex AI endpoints an environment routes images to, granted per endpoint.

A custom role with the single permission `aiplatform.endpoints.predict` is bound on each
endpoint (`google_vertex_ai_endpoint_iam_member`), never on the project: the processor can call
the models it is configured for and nothing else in Vertex AI (no project-wide
`roles/aiplatform.user`, which would also let it read datasets and deploy models). Endpoint IAM
exists only in the google-beta provider.
"""

from __future__ import annotations

from cdktn import TerraformProvider
from cdktn_provider_google.project_iam_custom_role import ProjectIamCustomRole
from cdktn_provider_google_beta.google_vertex_ai_endpoint_iam_member import (
    GoogleVertexAiEndpointIamMember,
)
from constructs import Construct

PREDICT_PERMISSION = "aiplatform.endpoints.predict"


class VertexEndpointAccess(Construct):
    """`access.grant_predict(key, member)` on every endpoint in `endpoints`; `beta_provider` is
    the stack's google-beta provider (endpoint IAM is beta-only)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        project_id: str,
        role_id: str,
        endpoints: tuple[str, ...],
        beta_provider: TerraformProvider,
    ) -> None:
        super().__init__(scope, id_)
        self.endpoints = endpoints
        self.role = ProjectIamCustomRole(
            self,
            "predictor",
            project=project_id,
            role_id=role_id,
            title="Vertex AI endpoint predictor",
            description="Online prediction on the Vertex AI endpoints it is granted on.",
            permissions=[PREDICT_PERMISSION],
        )
        self.provider = beta_provider

    def grant_predict(self, key: str, member: str) -> list[GoogleVertexAiEndpointIamMember]:
        """`key` names the grants (with the endpoint: addresses never depend on list order)."""
        grants = []
        for endpoint in self.endpoints:
            _, project, _, location, _, endpoint_id = endpoint.split("/")
            grants.append(
                GoogleVertexAiEndpointIamMember(
                    self,
                    f"predict_{key}_{location}_{endpoint_id}",
                    provider=self.provider,
                    project=project,
                    location=location,
                    endpoint=endpoint_id,
                    role=self.role.id,
                    member=member,
                )
            )
        return grants
