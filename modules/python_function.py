"""A Python Cloud Function (gen2) with its own service account, reachable from inside only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cdktn_provider_google.cloud_run_v2_service_iam_member import (
    CloudRunV2ServiceIamMember,
)
from cdktn_provider_google.cloudfunctions2_function import (
    Cloudfunctions2Function,
    Cloudfunctions2FunctionEventTriggerEventFilters,
)
from cdktn_provider_google.service_account import ServiceAccount
from constructs import Construct

from modules.function_source import FunctionSource

RUNTIME = "python312"
INGRESS = "ALLOW_INTERNAL_ONLY"
INVOKER = "roles/run.invoker"
OBJECT_FINALIZED = "google.cloud.storage.object.v1.finalized"


@dataclass(frozen=True)
class Sizing:
    memory_mib: int
    cpu: str
    timeout_seconds: int
    min_instances: int
    max_instances: int
    concurrency: int


@dataclass(frozen=True)
class StorageTrigger:
    """Run on every object finalized in `bucket` (Eventarc), retrying failed events."""

    bucket: str
    region: str


class PythonFunction(Construct):
    """Cloud Functions gen2 running `entry_point` from `source`.

    Ingress is internal only and invocation needs IAM (`grant_invoke`): nothing on the
    internet can call it, and only identities we name can call it from inside Google. A
    function behind a load balancer (the review app) passes `ingress="ALLOW_INTERNAL_AND_GCLB"`.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        location: str,
        description: str,
        entry_point: str,
        source: FunctionSource,
        sizing: Sizing,
        environment: Mapping[str, str],
        labels: dict[str, str],
        build_service_account: str,
        trigger: StorageTrigger | None = None,
        ingress: str = INGRESS,
    ) -> None:
        super().__init__(scope, id_)
        self.service_account = ServiceAccount(
            self,
            "identity",
            account_id=f"{name}-fn"[:30],
            display_name=f"Runtime identity of the {name} function",
        )
        self.member = self.service_account.member
        self._invokers = 0
        event_trigger = None
        if trigger is not None:
            event_trigger = {
                "trigger_region": trigger.region,
                "event_type": OBJECT_FINALIZED,
                "event_filters": [
                    Cloudfunctions2FunctionEventTriggerEventFilters(
                        attribute="bucket", value=trigger.bucket
                    )
                ],
                "retry_policy": "RETRY_POLICY_RETRY",
                # Eventarc calls the function as this identity, which needs run.invoker on it.
                "service_account_email": self.service_account.email,
            }
        self.function = Cloudfunctions2Function(
            self,
            "function",
            name=name,
            location=location,
            description=description,
            build_config={
                "runtime": RUNTIME,
                "entry_point": entry_point,
                # A dedicated build identity: new projects no longer give the default compute
                # account the Editor role Cloud Build used to rely on.
                "service_account": build_service_account,
                "source": {
                    "storage_source": {"bucket": source.bucket, "object": source.object.name}
                },
            },
            service_config={
                "available_memory": f"{sizing.memory_mib}Mi",
                "available_cpu": sizing.cpu,
                "timeout_seconds": sizing.timeout_seconds,
                "min_instance_count": sizing.min_instances,
                "max_instance_count": sizing.max_instances,
                "max_instance_request_concurrency": sizing.concurrency,
                "ingress_settings": ingress,
                "all_traffic_on_latest_revision": True,
                "service_account_email": self.service_account.email,
                "environment_variables": dict(environment),
            },
            event_trigger=event_trigger,
            labels=labels,
        )
        if trigger is not None:
            self.grant_invoke(self.member)

    @property
    def uri(self) -> str:
        return self.function.service_config.uri

    @property
    def service_name(self) -> str:
        """The Cloud Run service that runs the function (same name, same region)."""
        return self.function.name

    def grant_invoke(self, member: str) -> CloudRunV2ServiceIamMember:
        self._invokers += 1
        return CloudRunV2ServiceIamMember(
            self,
            f"invoker_{self._invokers}",
            location=self.function.location,
            name=self.function.name,
            role=INVOKER,
            member=member,
        )
