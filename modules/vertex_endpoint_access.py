"""Prediction on the Vertex AI endpoints an environment routes images to, granted per endpoint.

A custom role with the single permission `aiplatform.endpoints.predict` is bound on each
endpoint (`google_vertex_ai_endpoint_iam_member`), never on the project: the processor can call
the models it is configured for and nothing else in Vertex AI (no project-wide
`roles/aiplatform.user`, which would also let it read datasets and deploy models).

Endpoint IAM exists only in the google-beta provider. The prebuilt google provider package has
no beta resources, so the binding is declared as a plain Terraform resource of the google-beta
provider, pinned to the same version as the google provider.
"""

from __future__ import annotations

from cdktf import TerraformProvider, TerraformProviderGeneratorMetadata, TerraformResource
from cdktf_cdktf_provider_google.project_iam_custom_role import ProjectIamCustomRole
from constructs import Construct

PREDICT_PERMISSION = "aiplatform.endpoints.predict"
BETA_SOURCE = "hashicorp/google-beta"


def _beta_metadata(version: str | None) -> TerraformProviderGeneratorMetadata:
    return TerraformProviderGeneratorMetadata(
        provider_name="google-beta", provider_version=version, provider_version_constraint=version
    )


class VertexEndpointAccess(Construct):
    """`access.grant_predict(member)` on every endpoint in `endpoints`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        project_id: str,
        region: str,
        role_id: str,
        endpoints: tuple[str, ...],
        provider_version: str | None,
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
        self._metadata = _beta_metadata(provider_version)
        self.provider = TerraformProvider(
            self,
            "google_beta",
            terraform_resource_type="google-beta",
            terraform_generator_metadata=self._metadata,
            terraform_provider_source=BETA_SOURCE,
        )
        self.provider.add_override("project", project_id)
        self.provider.add_override("region", region)

    def grant_predict(self, member: str) -> list[TerraformResource]:
        grants = []
        for index, endpoint in enumerate(self.endpoints):
            _, project, _, location, _, endpoint_id = endpoint.split("/")
            grant = TerraformResource(
                self,
                f"predict_{index}",
                terraform_resource_type="google_vertex_ai_endpoint_iam_member",
                terraform_generator_metadata=self._metadata,
                provider=self.provider,
            )
            for key, value in (
                ("project", project),
                ("location", location),
                ("endpoint", endpoint_id),
                ("role", self.role.id),
                ("member", member),
            ):
                grant.add_override(key, value)
            grants.append(grant)
        return grants
