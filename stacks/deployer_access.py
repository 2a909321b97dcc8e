"""What the identities that deploy and plan the pipeline stack may do, per resource type.

Each Terraform type the pipeline stack declares maps to the access needed to create, update,
delete and (for plans) read it. The setup stack grants the deploy identity exactly the union
over the types an environment's pipeline stack contains, and the plan identity the read-only
union; tests/infra/test_setup_stack.py fails when a type appears without an entry here.

Predefined roles where they fit; permissions in one custom role where the predefined role is
broader than needed (the Healthcare and Storage admin roles include reading patient data; the
deployer manages stores and buckets, it never reads what is in them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Access:
    roles: frozenset[str] = frozenset()  # predefined roles, project-level
    permissions: frozenset[str] = frozenset()  # into the deployer's custom role
    read: frozenset[str] = frozenset()  # into the planner's custom role
    note: str = ""


def _a(
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
    read: Iterable[str] = (),
    note: str = "",
) -> Access:
    return Access(frozenset(roles), frozenset(permissions), frozenset(read), note)


def _crud(prefix: str, *, iam: bool = False) -> list[str]:
    verbs = ["create", "delete", "get", "list", "update"]
    if iam:
        verbs += ["getIamPolicy", "setIamPolicy"]
    return [f"{prefix}.{v}" for v in verbs]


def _get(prefix: str, *, iam: bool = False) -> list[str]:
    return [f"{prefix}.get", f"{prefix}.list"] + ([f"{prefix}.getIamPolicy"] if iam else [])


PROJECT_READ = ("resourcemanager.projects.get",)
PROJECT_IAM = ("resourcemanager.projects.getIamPolicy", "resourcemanager.projects.setIamPolicy")
HEALTHCARE_OPERATIONS = ("healthcare.operations.get", "healthcare.operations.list")
BUCKET_ADMIN = [
    *_crud("storage.buckets", iam=True),
    "storage.buckets.enableObjectRetention",
]

ACCESS: dict[str, Access] = {
    "google_project_service": _a(
        ["roles/serviceusage.serviceUsageAdmin"],
        read=["serviceusage.services.get", "serviceusage.services.list"],
    ),
    "google_project_service_identity": _a(
        ["roles/serviceusage.serviceUsageAdmin"], note="generateServiceIdentity"
    ),
    "data.google_project": _a(permissions=PROJECT_READ, read=PROJECT_READ),
    "data.google_storage_project_service_account": _a(permissions=PROJECT_READ, read=PROJECT_READ),
    # Project IAM: the deployer may change only the roles the pipeline grants at project level
    # (an IAM condition on modifiedGrantsByRole, see setup_stack.py), never make itself Owner.
    "google_project_iam_member": _a(permissions=PROJECT_IAM, read=PROJECT_IAM[:1]),
    "google_project_iam_audit_config": _a(permissions=PROJECT_IAM, read=PROJECT_IAM[:1]),
    "google_logging_project_bucket_config": _a(
        ["roles/logging.configWriter"], read=_get("logging.buckets")
    ),
    "google_logging_metric": _a(["roles/logging.configWriter"], read=_get("logging.logMetrics")),
    "google_monitoring_notification_channel": _a(
        ["roles/monitoring.notificationChannelEditor"],
        read=_get("monitoring.notificationChannels"),
    ),
    "google_monitoring_alert_policy": _a(
        ["roles/monitoring.alertPolicyEditor"], read=_get("monitoring.alertPolicies")
    ),
    "google_monitoring_dashboard": _a(
        ["roles/monitoring.dashboardEditor"], read=_get("monitoring.dashboards")
    ),
    "google_service_account": _a(
        ["roles/iam.serviceAccountAdmin"], read=_get("iam.serviceAccounts")
    ),
    "google_kms_key_ring": _a(["roles/cloudkms.admin"], read=_get("cloudkms.keyRings")),
    "google_kms_crypto_key": _a(["roles/cloudkms.admin"], read=_get("cloudkms.cryptoKeys")),
    "google_kms_crypto_key_iam_member": _a(
        ["roles/cloudkms.admin"], read=["cloudkms.cryptoKeys.getIamPolicy"]
    ),
    "google_pubsub_topic": _a(["roles/pubsub.editor"], read=_get("pubsub.topics")),
    "google_pubsub_topic_iam_member": _a(
        permissions=["pubsub.topics.getIamPolicy", "pubsub.topics.setIamPolicy"],
        read=["pubsub.topics.getIamPolicy"],
    ),
    "google_pubsub_subscription": _a(
        ["roles/pubsub.editor"],
        read=_get("pubsub.subscriptions"),
        note="push subscriptions act as the push identity: iam.serviceAccounts.actAs",
    ),
    "google_pubsub_subscription_iam_member": _a(
        permissions=["pubsub.subscriptions.getIamPolicy", "pubsub.subscriptions.setIamPolicy"],
        read=["pubsub.subscriptions.getIamPolicy"],
    ),
    "google_healthcare_dataset": _a(
        permissions=[*_crud("healthcare.datasets"), *HEALTHCARE_OPERATIONS],
        read=_get("healthcare.datasets"),
    ),
    "google_healthcare_dicom_store": _a(
        permissions=_crud("healthcare.dicomStores"), read=_get("healthcare.dicomStores")
    ),
    "google_healthcare_dicom_store_iam_member": _a(
        permissions=["healthcare.dicomStores.getIamPolicy", "healthcare.dicomStores.setIamPolicy"],
        read=["healthcare.dicomStores.getIamPolicy"],
    ),
    "google_healthcare_fhir_store": _a(
        permissions=_crud("healthcare.fhirStores"), read=_get("healthcare.fhirStores")
    ),
    "google_healthcare_fhir_store_iam_member": _a(
        permissions=["healthcare.fhirStores.getIamPolicy", "healthcare.fhirStores.setIamPolicy"],
        read=["healthcare.fhirStores.getIamPolicy"],
    ),
    "google_storage_bucket": _a(permissions=BUCKET_ADMIN, read=_get("storage.buckets")),
    "google_storage_bucket_iam_member": _a(
        permissions=["storage.buckets.getIamPolicy", "storage.buckets.setIamPolicy"],
        read=["storage.buckets.getIamPolicy"],
    ),
    # Object access on the function-source bucket only (an IAM condition, see setup_stack.py).
    "google_storage_bucket_object": _a(
        note="roles/storage.objectAdmin on the function-source bucket only"
    ),
    "google_cloudfunctions2_function": _a(
        ["roles/cloudfunctions.developer", "roles/eventarc.developer"],
        read=[*_get("cloudfunctions.functions"), "cloudfunctions.operations.get"],
        note="runs and builds as our service accounts: iam.serviceAccounts.actAs",
    ),
    "google_cloud_run_v2_service_iam_member": _a(
        permissions=["run.services.get", "run.services.getIamPolicy", "run.services.setIamPolicy"],
        read=["run.services.getIamPolicy"],
    ),
    "time_sleep": _a(note="no cloud access"),
    # Custom roles the stack defines (review app's FHIR reviewer, Vertex AI predictor).
    "google_project_iam_custom_role": _a(["roles/iam.roleAdmin"], read=_get("iam.roles")),
    # Vertex AI: grants on the routed endpoints only; the endpoints are the user's.
    "google_vertex_ai_endpoint_iam_member": _a(
        permissions=["aiplatform.endpoints.getIamPolicy", "aiplatform.endpoints.setIamPolicy"],
        read=["aiplatform.endpoints.getIamPolicy"],
    ),
    # The review app's external HTTPS load balancer in front of its function, behind IAP.
    **{
        f"google_compute_{kind}": _a(
            ["roles/compute.loadBalancerAdmin"], read=_get(f"compute.{api}")
        )
        for kind, api in (
            ("backend_service", "backendServices"),
            ("global_address", "globalAddresses"),
            ("global_forwarding_rule", "globalForwardingRules"),
            ("managed_ssl_certificate", "sslCertificates"),
            ("region_network_endpoint_group", "regionNetworkEndpointGroups"),
            ("ssl_policy", "sslPolicies"),
            ("target_https_proxy", "targetHttpsProxies"),
            ("url_map", "urlMaps"),
        )
    },
    "google_iap_web_backend_service_iam_member": _a(
        ["roles/iap.admin"], read=["iap.webServiceVersions.getIamPolicy"]
    ),
}
# actAs on the service accounts the pipeline creates (the functions run and build as them,
# pushes are signed by one): project-level because they are created by the same stack.
ACT_AS = "roles/iam.serviceAccountUser"
# The deploy identity also runs `imaging smoke` where `ci.smoke_test` is on (synthetic data).
SMOKE_ROLES = ("roles/healthcare.dicomEditor", "roles/healthcare.fhirResourceEditor")


@dataclass(frozen=True)
class Grants:
    roles: frozenset[str]
    permissions: frozenset[str]
    read: frozenset[str] = field(default_factory=frozenset)


def needed(types: Iterable[str]) -> Grants:
    """What deploying (roles, custom permissions) and planning (read) `types` needs."""
    unknown = sorted(t for t in set(types) if t not in ACCESS)
    if unknown:
        raise KeyError(f"no deployer access declared for: {', '.join(unknown)}")
    entries = [ACCESS[t] for t in set(types)]
    roles = frozenset().union(*(e.roles for e in entries)) | {ACT_AS}
    permissions = frozenset().union(*(e.permissions for e in entries))
    read = frozenset().union(*(e.read for e in entries))
    return Grants(roles, permissions, read)


README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- deployer-access:start -->"
END = "<!-- deployer-access:end -->"


def markdown() -> str:
    """The README's table: per Terraform type, the predefined roles and custom permissions."""
    lines = [
        "| Terraform type | predefined roles | in the custom deployer role |",
        "| --- | --- | --- |",
    ]
    for type_, access in sorted(ACCESS.items()):
        roles = ", ".join(f"`{r}`" for r in sorted(access.roles)) or "-"
        permissions = ", ".join(f"`{p}`" for p in sorted(access.permissions))
        extra = "; ".join(x for x in (permissions, access.note) if x) or "-"
        lines.append(f"| `{type_}` | {roles} | {extra} |")
    return "\n".join(lines)


def readme_with_table(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    """`python -m stacks.deployer_access --write` updates README.md; `--check` exits 1 when
    it is out of date."""
    text = README.read_text(encoding="utf-8")
    updated = readme_with_table(text)
    if "--write" in argv:
        README.write_text(updated, encoding="utf-8")
        return 0
    if "--check" in argv:
        return 0 if updated == text else 1
    print(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
