"""The review web app: a Cloud Functions gen2 HTTP function behind an external HTTPS load
balancer with Identity-Aware Proxy, running as its own least-privilege identity.

Why a function and a load balancer: the app ships from handlers/ like the other functions (one
packaging path, one build). A gen2 function is a Cloud Run service, but one that Cloud
Functions manages: `iap_enabled` of google_cloud_run_v2_service cannot be set on it from
Terraform without fighting the function resource over the same service. IAP on the backend
service of a load balancer (serverless NEG -> function) is the documented way for functions;
the function's ingress admits only internal and load-balancer traffic, and only IAP's service
agent may invoke it, so the run.app URL cannot be used to go around IAP.

Who may enter is `access` (IAM members, e.g. `group:radiologists@example.org`):
roles/iap.httpsResourceAccessor on the backend service. The app verifies IAP's signed header on
every request against `/projects/NUMBER/global/backendServices/ID` (its environment variable
IAP_AUDIENCE), so a request that did not pass IAP gets 401.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktn_provider_google.compute_backend_service import ComputeBackendService
from cdktn_provider_google.compute_global_address import ComputeGlobalAddress
from cdktn_provider_google.compute_global_forwarding_rule import (
    ComputeGlobalForwardingRule,
)
from cdktn_provider_google.compute_managed_ssl_certificate import (
    ComputeManagedSslCertificate,
)
from cdktn_provider_google.compute_region_network_endpoint_group import (
    ComputeRegionNetworkEndpointGroup,
)
from cdktn_provider_google.compute_ssl_policy import ComputeSslPolicy
from cdktn_provider_google.compute_target_https_proxy import ComputeTargetHttpsProxy
from cdktn_provider_google.compute_url_map import ComputeUrlMap
from cdktn_provider_google.iap_web_backend_service_iam_member import (
    IapWebBackendServiceIamMember,
)
from cdktn_provider_google.project_iam_custom_role import ProjectIamCustomRole
from constructs import Construct

from modules.function_source import FunctionSource
from modules.python_function import Builder, PythonFunction, Sizing

ENTRY_POINT = "review_app"
INGRESS = "ALLOW_INTERNAL_AND_GCLB"
IAP_ACCESSOR = "roles/iap.httpsResourceAccessor"
# What a review needs on the FHIR store, and no more: read and search (worklist, study page),
# create and update (the report's status, the Provenance), transactions (both at once). IAM on
# a FHIR store cannot name resource types; the predefined editor role would add delete/purge.
FHIR_REVIEW_PERMISSIONS = (
    "healthcare.fhirResources.get",
    "healthcare.fhirStores.searchResources",
    "healthcare.fhirResources.create",
    "healthcare.fhirResources.update",
    "healthcare.fhirStores.executeBundle",
)


class ReviewApp(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        location: str,
        project_id: str,
        project_number: str,
        domain: str,
        access: Sequence[str],
        source: FunctionSource,
        sizing: Sizing,
        environment: Mapping[str, str],
        labels: dict[str, str],
        builder: Builder,
        iap_agent: str,
    ) -> None:
        super().__init__(scope, id_)
        self.fhir_role = ProjectIamCustomRole(
            self,
            "fhir_reviewer",
            project=project_id,
            role_id=f"{name.replace('-', '_')}_fhir_reviewer",
            title=f"FHIR reviewer ({name})",
            description="Read reports, write a review's status and Provenance.",
            permissions=list(FHIR_REVIEW_PERMISSIONS),
        ).name
        # The NEG names the function; it does not need the function to exist yet, so the
        # backend service (whose id is the app's audience) comes first and the function after.
        self.neg = ComputeRegionNetworkEndpointGroup(
            self,
            "neg",
            name=f"{name}-neg",
            region=location,
            network_endpoint_type="SERVERLESS",
            cloud_function={"function": name},
        )
        self.backend = ComputeBackendService(
            self,
            "backend",
            name=f"{name}-backend",
            protocol="HTTPS",
            load_balancing_scheme="EXTERNAL_MANAGED",
            backend=[{"group": self.neg.id}],
            # Google-managed OAuth client (no client secret in the configuration or state).
            iap={"enabled": True},
            # Request logs carry paths, and our paths hold UIDs and ids only, never names.
            log_config={"enable": True, "sample_rate": 1},
        )
        backend_id = self.backend.get_string_attribute("generated_id")
        self.audience = f"/projects/{project_number}/global/backendServices/{backend_id}"
        self.function = PythonFunction(
            self,
            "app",
            name=name,
            location=location,
            description="Review app: worklist, study, review, dead-letter replay (behind IAP).",
            entry_point=ENTRY_POINT,
            source=source,
            sizing=sizing,
            environment={**environment, "AUTH_MODE": "iap", "IAP_AUDIENCE": self.audience},
            labels=labels,
            builder=builder,
            ingress=INGRESS,
        )
        self.function.grant_invoke("iap", iap_agent)  # IAP calls the function as its service agent
        url_map = ComputeUrlMap(
            self, "url_map", name=f"{name}-urls", default_service=self.backend.id
        )
        certificate = ComputeManagedSslCertificate(
            self, "certificate", name=f"{name}-cert", managed={"domains": [domain]}
        )
        ssl_policy = ComputeSslPolicy(
            self, "tls", name=f"{name}-tls", profile="MODERN", min_tls_version="TLS_1_2"
        )
        proxy = ComputeTargetHttpsProxy(
            self,
            "https_proxy",
            name=f"{name}-https",
            url_map=url_map.id,
            ssl_certificates=[certificate.id],
            ssl_policy=ssl_policy.id,
        )
        self.address = ComputeGlobalAddress(self, "address", name=f"{name}-ip", labels=labels)
        ComputeGlobalForwardingRule(
            self,
            "https",
            name=f"{name}-https",
            target=proxy.id,
            ip_address=self.address.address,
            port_range="443",
            load_balancing_scheme="EXTERNAL_MANAGED",
            labels=labels,
        )
        # Keyed by member, so adding or removing one person never re-addresses the others.
        for member in sorted(set(access)):
            key = member.replace(":", "_").replace("@", "_at_").replace(".", "_")
            IapWebBackendServiceIamMember(
                self,
                f"access_{key}",
                web_backend_service=self.backend.name,
                role=IAP_ACCESSOR,
                member=member,
            )

    @property
    def member(self) -> str:
        """The app's runtime identity, for grants."""
        return self.function.member

    @property
    def url(self) -> str:
        return f"https://{self.address.address}"
