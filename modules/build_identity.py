"""The identity Cloud Build uses to turn the functions' source zip into container images."""

from __future__ import annotations

from cdktn_provider_google.project_iam_member import ProjectIamMember
from cdktn_provider_google.service_account import ServiceAccount
from constructs import Construct

# Project-level because the Artifact Registry repository (gcf-artifacts) and the build logs are
# created by Cloud Functions itself, not by us, so there is no resource to bind to.
BUILD_ROLES = ("roles/logging.logWriter", "roles/artifactregistry.writer")


class BuildIdentity(Construct):
    def __init__(self, scope: Construct, id_: str, *, project_id: str, account_id: str) -> None:
        super().__init__(scope, id_)
        self.service_account = ServiceAccount(
            self,
            "identity",
            account_id=account_id,
            display_name="Builds the imaging pipeline's functions",
        )
        for role in BUILD_ROLES:
            ProjectIamMember(
                self,
                role.split("/")[1].replace(".", "_"),
                project=project_id,
                role=role,
                member=self.service_account.member,
            )

    @property
    def member(self) -> str:
        return self.service_account.member

    @property
    def resource_name(self) -> str:
        """`projects/P/serviceAccounts/EMAIL`, the form build_config.service_account takes."""
        return self.service_account.id
