"""A Python Cloud Function (gen2) with its own service account, reachable from inside only.

The function owns its ordering: it is created only after its build identity is ready (grants
plus propagation) and, with a storage trigger, after the grants Eventarc needs (the storage
agent publishes to Eventarc's topic, the trigger identity receives events and invokes the
function) plus propagation, as the provider's "cloudfunctions2 basic gcs" example chains them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cdktn import ITerraformDependable
from cdktn_provider_google.cloud_run_v2_service_iam_member import (
    CloudRunV2ServiceIamMember,
)
from cdktn_provider_google.cloudfunctions2_function import (
    Cloudfunctions2Function,
    Cloudfunctions2FunctionEventTriggerEventFilters,
)
from cdktn_provider_google.project_iam_member import ProjectIamMember
from cdktn_provider_google.service_account import ServiceAccount
from cdktn_provider_time.sleep import Sleep
from constructs import Construct

from modules.function_source import FunctionSource

RUNTIME = "python312"
INGRESS = "ALLOW_INTERNAL_ONLY"
INVOKER = "roles/run.invoker"
OBJECT_FINALIZED = "google.cloud.storage.object.v1.finalized"
EVENT_RECEIVER = "roles/eventarc.eventReceiver"
PUBLISHER = "roles/pubsub.publisher"
PROPAGATION = "60s"


class Builder(Protocol):
    """The identity that builds the function (modules.build_identity.BuildIdentity)."""

    @property
    def resource_name(self) -> str: ...

    @property
    def ready(self) -> ITerraformDependable: ...


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
    """Run on every object finalized in `bucket` (Eventarc), retrying failed events.

    `storage_agent` is the project's Cloud Storage service agent (it publishes the events);
    the grants Eventarc needs are project-level: there is no per-trigger resource to bind to.
    """

    bucket: str
    region: str
    project_id: str
    storage_agent: str


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
        builder: Builder,
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
        waits: list[ITerraformDependable] = [builder.ready]
        event_trigger = None
        if trigger is not None:
            waits.append(self._trigger_grants(trigger))
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
                "service_account": builder.resource_name,
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
            depends_on=waits,
        )
        if trigger is not None:
            # On the function's own service, so it is made after the function exists; Eventarc
            # retries deliveries until it applies.
            self.grant_invoke("trigger", self.member)

    def _trigger_grants(self, trigger: StorageTrigger) -> Sleep:
        grants = [
            ProjectIamMember(
                self,
                "trigger_event_receiver",
                project=trigger.project_id,
                role=EVENT_RECEIVER,
                member=self.member,
            ),
            ProjectIamMember(
                self,
                "storage_agent_publisher",
                project=trigger.project_id,
                role=PUBLISHER,
                member=trigger.storage_agent,
            ),
        ]
        return Sleep(self, "trigger_propagation", create_duration=PROPAGATION, depends_on=grants)

    @property
    def uri(self) -> str:
        return self.function.service_config.uri

    @property
    def service_name(self) -> str:
        """The Cloud Run service that runs the function (same name, same region)."""
        return self.function.name

    def grant_invoke(self, key: str, member: str) -> CloudRunV2ServiceIamMember:
        """`key` names the grant (its Terraform address): choose it, never derive it from order."""
        return CloudRunV2ServiceIamMember(
            self,
            f"invoker_{key}",
            location=self.function.location,
            name=self.function.name,
            role=INVOKER,
            member=member,
        )
