"""The identity Cloud Build uses to turn the functions' source zip into container images.

Cloud Functions gen2 copies the source into its own `gcf-v2-sources-<number>-<region>` bucket
and builds from there, so the build identity must read that bucket too (provider issue 20571),
and a function must not be created before these grants have propagated: `ready` is what a
function waits for (the provider's "cloudfunctions2 basic builder" example waits 60 s).
"""

from __future__ import annotations

from typing import Protocol

from cdktn import ITerraformDependable
from cdktn_provider_google.project_iam_member import ProjectIamMember
from cdktn_provider_google.service_account import ServiceAccount
from cdktn_provider_time.sleep import Sleep
from constructs import Construct

# Project-level because the Artifact Registry repository (gcf-artifacts), the build logs and the
# gcf-v2-sources bucket are created by Cloud Functions itself, not by us: no resource to bind to.
BUILD_ROLES = ("roles/logging.logWriter", "roles/artifactregistry.writer")
SOURCE_READER = "roles/storage.objectViewer"
PROPAGATION = "60s"


class SourceBucket(Protocol):
    """A bucket holding function source (modules.private_bucket.PrivateBucket has this shape)."""

    def grant_object_read(self, key: str, member: str) -> ITerraformDependable: ...


class BuildIdentity(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        project_id: str,
        project_number: str,
        region: str,
        account_id: str,
    ) -> None:
        super().__init__(scope, id_)
        self.service_account = ServiceAccount(
            self,
            "identity",
            account_id=account_id,
            display_name="Builds the imaging pipeline's functions",
        )
        self._grants: list[ITerraformDependable] = [
            ProjectIamMember(
                self,
                role.split("/")[1].replace(".", "_"),
                project=project_id,
                role=role,
                member=self.service_account.member,
            )
            for role in BUILD_ROLES
        ]
        # Read only Cloud Functions' own source bucket of this region (an IAM condition), not
        # every bucket of the project as the provider's example does with objectAdmin.
        sources = f"gcf-v2-sources-{project_number}-{region}"
        self._grants.append(
            ProjectIamMember(
                self,
                "gcf_sources_reader",
                project=project_id,
                role=SOURCE_READER,
                member=self.service_account.member,
                condition={
                    "title": "gcf-v2-sources bucket only",
                    "description": "Cloud Functions copies function source here before a build.",
                    "expression": f'resource.name.startsWith("projects/_/buckets/{sources}")',
                },
            )
        )
        self._ready: Sleep | None = None

    @property
    def member(self) -> str:
        return self.service_account.member

    @property
    def resource_name(self) -> str:
        """`projects/P/serviceAccounts/EMAIL`, the form build_config.service_account takes."""
        return self.service_account.id

    def read_source(self, key: str, bucket: SourceBucket) -> None:
        """Lets the build read the source objects in `bucket` (before `ready`)."""
        if self._ready is not None:
            raise RuntimeError("read_source() after `ready` was used: the wait would miss it")
        self._grants.append(bucket.grant_object_read(key, self.member))

    @property
    def ready(self) -> ITerraformDependable:
        """Every grant of the build identity, plus the propagation wait: functions built by this
        identity depend on it."""
        if self._ready is None:
            self._ready = Sleep(
                self, "propagation", create_duration=PROPAGATION, depends_on=self._grants
            )
        return self._ready
