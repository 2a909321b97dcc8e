"""First-time setup of one environment, applied once by a person with Owner (or the roles the
README lists) before CI can deploy the pipeline stack:

- the Terraform state bucket the environment's `state_backend` names (versioned, uniform
  access, public access prevention, prevent_destroy; CMEK when `security.cmek`);
- a Workload Identity pool with a GitHub provider that accepts only tokens of
  `ci.github_repository` (attribute condition);
- the deploy identity, with exactly the access the environment's pipeline stack needs
  (stacks/deployer_access.py), usable only from the GitHub environment `<env>`;
- the read-only plan identity (a custom role of get/list permissions, the state objects
  readable), usable only from the GitHub environment `<env>-plan`.

Its own state stays local (`state/<env>-setup.tfstate` next to the output directory, like a
local pipeline stack's: cleaning cdktf.out keeps it): the bucket it creates does not exist
before it; README "First deploy" shows how to move it into that bucket afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable

from cdktn import LocalBackend, TerraformOutput, TerraformStack
from cdktn_provider_google.data_google_storage_project_service_account import (
    DataGoogleStorageProjectServiceAccount,
)
from cdktn_provider_google.iam_workload_identity_pool import IamWorkloadIdentityPool
from cdktn_provider_google.iam_workload_identity_pool_provider import (
    IamWorkloadIdentityPoolProvider,
)
from cdktn_provider_google.kms_key_ring import KmsKeyRing
from cdktn_provider_google.project_iam_custom_role import ProjectIamCustomRole
from cdktn_provider_google.project_iam_member import ProjectIamMember
from cdktn_provider_google.project_service import ProjectService
from cdktn_provider_google.provider import GoogleProvider
from cdktn_provider_google.service_account import ServiceAccount
from cdktn_provider_google.service_account_iam_member import ServiceAccountIamMember
from cdktn_provider_google.storage_bucket import StorageBucket
from cdktn_provider_time.provider import TimeProvider
from constructs import Construct

from modules.encryption_keys import EncryptionKeys
from modules.private_bucket import PrivateBucket
from stacks import deployer_access
from stacks.config import ConfigError, Environment
from stacks.pipeline_stack import local_state_path

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
SETUP_SERVICES = (
    "iam",
    "iamcredentials",
    "sts",
    "storage",
    "cloudresourcemanager",
    "serviceusage",
)
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"


def setup_stack_name(env: Environment) -> str:
    return f"{env.name}-setup"


class SetupStack(TerraformStack):
    def __init__(
        self,
        scope: Construct,
        env: Environment,
        *,
        pipeline_types: Iterable[str],
        project_roles: Iterable[str],
    ) -> None:
        """`pipeline_types`: the Terraform types of the environment's pipeline stack;
        `project_roles`: the roles it grants at project level (the only ones the deploy
        identity may grant there)."""
        super().__init__(scope, setup_stack_name(env))
        cfg = env.config
        backend, repository = cfg.state_backend, cfg.ci.github_repository
        if backend.type != "gcs" or backend.bucket is None:
            raise ConfigError(f"{env.path}: state_backend.type: the setup stack needs 'gcs'")
        if repository is None:
            raise ConfigError(
                f"{env.path}: ci.github_repository: required by the setup stack (owner/name)"
            )
        prefix, labels = cfg.name_prefix, cfg.labels.model_dump()
        LocalBackend(self, path=local_state_path(setup_stack_name(env)))
        GoogleProvider(self, "google", project=cfg.project_id, region=cfg.region)
        TimeProvider(self, "time")  # the key grant's propagation wait (CMEK)
        apis = [
            ProjectService(
                self,
                f"service_{name}",
                service=f"{name}.googleapis.com",
                disable_on_destroy=False,
            )
            for name in (*SETUP_SERVICES, *(["cloudkms"] if cfg.security.cmek else []))
        ]

        # Terraform state: kept forever (versions too, for 90 days), never public.
        kms: dict[str, object] = {}
        if cfg.security.cmek:
            keys = EncryptionKeys(
                self,
                "state_key",
                name=f"{prefix}-{env.name}-setup",
                purposes={"state": cfg.region},
                rotation_days=cfg.security.key_rotation_days,
                labels=labels,
            )
            agent = DataGoogleStorageProjectServiceAccount(self, "storage_agent")
            kms = {"kms_key": keys.key("state"), "kms_agent": agent.member}
        state = PrivateBucket(
            self,
            "state",
            name=backend.bucket,
            location=cfg.region,
            labels=labels,
            noncurrent_days=90,
            protect=True,
            **kms,  # type: ignore[arg-type]
        )

        # GitHub Actions OIDC tokens of this repository only.
        pool = IamWorkloadIdentityPool(
            self,
            "pool",
            workload_identity_pool_id=f"{prefix}-github",
            display_name="GitHub Actions",
        )
        provider = IamWorkloadIdentityPoolProvider(
            self,
            "github",
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id="github",
            display_name=repository,
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.environment": "assertion.environment",
                "attribute.ref": "assertion.ref",
            },
            attribute_condition=f'assertion.repository == "{repository}"',
            oidc={"issuer_uri": GITHUB_ISSUER},
        )

        def github_environment(name: str) -> str:
            return f"principalSet://iam.googleapis.com/{pool.name}/attribute.environment/{name}"

        # The deploy identity: exactly what this environment's pipeline stack needs.
        access = deployer_access.needed(pipeline_types)
        deployer = ServiceAccount(
            self,
            "deployer",
            account_id=f"{prefix}-deploy",
            display_name=f"Deploys the {env.name} pipeline stack from CI",
        )
        role = ProjectIamCustomRole(
            self,
            "deployer_role",
            role_id=f"{prefix.replace('-', '_')}_deployer",
            title=f"{prefix} pipeline deployer",
            description="Manages the pipeline's stores and buckets without reading their data.",
            permissions=sorted(access.permissions),
        )
        roles = sorted(access.roles)
        if cfg.ci.smoke_test:
            roles += sorted(deployer_access.SMOKE_ROLES)
        for name in roles:
            self._grant(cfg.project_id, f"deployer_{_id(name)}", name, deployer.member)
        self._grant(cfg.project_id, "deployer_custom", role.id, deployer.member)
        # Project IAM changes limited to the roles the pipeline grants at project level.
        allowed = ", ".join(f"'{r}'" for r in sorted(set(project_roles)))
        ProjectIamMember(
            self,
            "deployer_project_iam",
            project=cfg.project_id,
            role="roles/resourcemanager.projectIamAdmin",
            member=deployer.member,
            condition={
                "title": "pipeline project roles only",
                "expression": "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
                f".hasOnly([{allowed}])",
            },
        )
        # Object access on the function-source bucket only (it uploads the source zip).
        source_bucket = f"{cfg.project_id}-{prefix}-source"
        ProjectIamMember(
            self,
            "deployer_source_objects",
            project=cfg.project_id,
            role="roles/storage.objectAdmin",
            member=deployer.member,
            condition={
                "title": "function source bucket only",
                "expression": f'resource.name.startsWith("projects/_/buckets/{source_bucket}/")',
            },
        )
        state.grant_object_admin("deployer", deployer.member)  # state and its lock
        ServiceAccountIamMember(
            self,
            "deployer_from_github",
            service_account_id=deployer.name,
            role=WORKLOAD_IDENTITY_USER,
            member=github_environment(env.name),
        )

        # The plan identity: reads everything the stack declares, writes nothing (plans run
        # with -lock=false, so it needs no write on the state bucket either).
        planner = ServiceAccount(
            self,
            "planner",
            account_id=f"{prefix}-plan",
            display_name=f"Plans the {env.name} pipeline stack (read-only)",
        )
        plan_role = ProjectIamCustomRole(
            self,
            "planner_role",
            role_id=f"{prefix.replace('-', '_')}_planner",
            title=f"{prefix} pipeline planner (read-only)",
            description="Reads the pipeline's resources and their IAM policies.",
            permissions=sorted(access.read),
        )
        self._grant(cfg.project_id, "planner_custom", plan_role.id, planner.member)
        state.grant_object_read("planner", planner.member)
        ServiceAccountIamMember(
            self,
            "planner_from_github",
            service_account_id=planner.name,
            role=WORKLOAD_IDENTITY_USER,
            member=github_environment(f"{env.name}-plan"),
        )

        # What the GitHub environments `<env>` and `<env>-plan` need as variables.
        for name, value in {
            "WIF_PROVIDER": provider.name,
            "DEPLOY_SERVICE_ACCOUNT": deployer.email,
            "PLAN_SERVICE_ACCOUNT": planner.email,
            "STATE_BUCKET": state.name,
        }.items():
            TerraformOutput(self, name, value=value, static_id=True)

        # On a brand-new project nothing may be created before the APIs it needs are on: the
        # resources that reference no other wait for every API (the rest reference them).
        api_refs = [f"google_project_service.{a.friendly_unique_id}" for a in apis]
        for node in self.node.find_all():
            if isinstance(node, SETUP_ROOT_TYPES):
                node.depends_on = [*api_refs, *(node.depends_on or [])]

    def _grant(self, project: str, id_: str, role: str, member: str) -> ProjectIamMember:
        return ProjectIamMember(self, id_, project=project, role=role, member=member)


# Resources of the setup stack that reference no other resource of it.
SETUP_ROOT_TYPES = (
    KmsKeyRing,
    StorageBucket,
    IamWorkloadIdentityPool,
    ServiceAccount,
    ProjectIamCustomRole,
    ProjectIamMember,
)


def _id(role: str) -> str:
    return role.split("/")[-1].replace(".", "_")
