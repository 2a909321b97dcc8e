"""One environment of the imaging pipeline, read top to bottom like the data flow in README.md:
images arrive (DICOM store, staging bucket -> ingest function), the store notifies Pub/Sub,
a push subscription calls the processor, which writes FHIR and publishes critical alerts;
logs feed metrics, alerts and a dashboard."""

from __future__ import annotations

from pathlib import Path

from cdktn import (
    App,
    GcsBackend,
    LocalBackend,
    TerraformIterator,
    TerraformOutput,
    TerraformResource,
    TerraformStack,
    Token,
)
from cdktn_provider_google.healthcare_dataset import HealthcareDataset
from cdktn_provider_google.kms_key_ring import KmsKeyRing
from cdktn_provider_google.logging_metric import LoggingMetric
from cdktn_provider_google.logging_project_bucket_config import LoggingProjectBucketConfig
from cdktn_provider_google.monitoring_dashboard import MonitoringDashboard
from cdktn_provider_google.monitoring_notification_channel import (
    MonitoringNotificationChannel,
)
from cdktn_provider_google.project_iam_audit_config import ProjectIamAuditConfig
from cdktn_provider_google.project_iam_member import ProjectIamMember
from cdktn_provider_google.project_service import ProjectService
from cdktn_provider_google.provider import GoogleProvider
from cdktn_provider_google.pubsub_topic import PubsubTopic
from cdktn_provider_google.service_account import ServiceAccount
from cdktn_provider_google.storage_bucket import StorageBucket
from constructs import Construct
from imaging_pipeline.notification_filter import push_subscription_filter

from modules.audit_logging import AuditLogging
from modules.build_identity import BuildIdentity
from modules.encryption_keys import EncryptionKeys
from modules.function_source import FunctionSource
from modules.healthcare_stores import HealthcareStores
from modules.messaging import PushSubscription, Topic
from modules.observability import Observability
from modules.private_bucket import ExpireRule, PrivateBucket
from modules.python_function import PythonFunction, Sizing, StorageTrigger
from modules.service_agents import ServiceAgents
from stacks.config import Environment, FunctionSizing

# APIs the pipeline calls; cloudkms is added when CMEK is on.
SERVICES = (
    "healthcare",
    "vision",
    "cloudfunctions",
    "run",
    "cloudbuild",
    "artifactregistry",
    "eventarc",
    "pubsub",
    "storage",
    "logging",
    "monitoring",
    "iam",
    # Project IAM bindings and the audit config go through the Resource Manager API.
    "cloudresourcemanager",
)
# Data Access audit logs (ADMIN_READ, DATA_READ, DATA_WRITE) for the services holding PHI.
AUDITED_SERVICES = ("healthcare.googleapis.com", "storage.googleapis.com")
HANDLERS_DIR = Path(__file__).resolve().parent.parent / "handlers"
LOG_LEVEL = {"dev": "DEBUG"}  # every other environment logs at INFO


def _sizing(sizing: FunctionSizing) -> Sizing:
    return Sizing(**sizing.model_dump())


class PipelineStack(TerraformStack):
    def __init__(self, scope: Construct, env: Environment) -> None:
        super().__init__(scope, env.name)
        cfg = env.config
        prefix = cfg.name_prefix
        labels = cfg.labels.model_dump()
        self._backend(env)
        GoogleProvider(
            self,
            "google",
            project=cfg.project_id,
            region=cfg.region,
            default_labels=labels,
        )
        services = list(SERVICES) + (["cloudkms"] if cfg.security.cmek else [])
        # One resource with for_each: one address for everything else to wait on.
        enabled = TerraformIterator.from_list([f"{name}.googleapis.com" for name in services])
        apis = ProjectService(
            self,
            "services",
            for_each=enabled,
            service=Token.as_string(enabled.value),
            disable_on_destroy=False,
        )
        agents = ServiceAgents(self, "agents", project_id=cfg.project_id)

        # Security baseline: audit trail, and (prod) customer-managed keys, granted to the
        # service agents before anything encrypted with them is created.
        AuditLogging(
            self,
            "audit",
            project_id=cfg.project_id,
            services=AUDITED_SERVICES,
            log_retention_days=cfg.retention.log_days,
        )
        keys = None
        key_grants: dict[str, TerraformResource] = {}
        if cfg.security.cmek:
            keys = EncryptionKeys(
                self,
                "cmek",
                name=f"{prefix}-{env.name}",
                location=cfg.region,
                purposes=("healthcare", "pubsub", "storage"),
                rotation_days=cfg.security.key_rotation_days,
                labels=labels,
            )
            key_grants = {
                "healthcare": keys.grant_encrypt_decrypt("healthcare", agents.healthcare),
                "pubsub": keys.grant_encrypt_decrypt("pubsub", agents.pubsub),
                "storage": keys.grant_encrypt_decrypt("storage", agents.storage),
            }

        def key(purpose: str) -> str | None:
            return keys.key_id(purpose) if keys else None

        # Topics: DICOM store notifications, their dead letters, FHIR changes, critical alerts.
        days = cfg.retention.pubsub_message_days

        def topic(id_: str, name: str) -> Topic:
            return Topic(
                self,
                id_,
                name=f"{prefix}-{name}",
                retention_days=days,
                labels=labels,
                kms_key=key("pubsub"),
            )

        dicom_events = topic("dicom_events", "dicom-events")
        dead_letters = topic("dicom_events_dead_letter", "dicom-events-dead-letter")
        fhir_changes = topic("fhir_changes", "fhir-changes")
        critical_alerts = topic("critical_alerts", "critical-findings")
        # The Healthcare service agent publishes the stores' notifications.
        dicom_events.grant_publish(agents.healthcare)
        fhir_changes.grant_publish(agents.healthcare)

        # PACS / modality --STOW-RS--> DICOM store; results go to the FHIR R4 store.
        stores = HealthcareStores(
            self,
            "healthcare",
            name=f"{prefix}-{env.name}",
            location=cfg.region,
            time_zone=cfg.time_zone,
            dicom_topic=dicom_events.id,
            fhir_topic=fhir_changes.id,
            labels=labels,
            kms_key=key("healthcare"),
            protect=cfg.security.deletion_protection,
        )

        # Buckets: staging (gs://.../incoming/ -> ingest) and the functions' source.
        staging = PrivateBucket(
            self,
            "staging",
            name=f"{cfg.project_id}-{prefix}-staging",
            location=cfg.region,
            labels=labels,
            noncurrent_days=cfg.retention.noncurrent_versions_days,
            expire=(
                ExpireRule("processed/", cfg.retention.staging_processed_days),
                ExpireRule("failed/", cfg.retention.staging_failed_days),
            ),
            kms_key=key("storage"),
        )
        source_bucket = PrivateBucket(
            self,
            "function_source",
            name=f"{cfg.project_id}-{prefix}-source",
            location=cfg.region,
            labels=labels,
            noncurrent_days=cfg.retention.noncurrent_versions_days,
            kms_key=key("storage"),
        )
        source = FunctionSource(
            self,
            "source",
            source_dir=HANDLERS_DIR,
            build_dir=Path(App.of(self).outdir) / ".function-source",
            bucket=source_bucket.name,
        )
        builder = BuildIdentity(
            self, "build", project_id=cfg.project_id, account_id=f"{prefix}-build"
        )
        source_bucket.grant_object_read(builder.member)

        common_env = {
            "ENVIRONMENT": env.name,
            "LOG_LEVEL": LOG_LEVEL.get(env.name, "INFO"),
            "DICOMWEB_URL": stores.dicomweb_url,
            "DICOM_STORE": stores.dicom_store_path,
        }

        # gs://staging/incoming/ --object finalize--> ingest function --STOW-RS--> DICOM store.
        # Eventarc filters storage events by bucket only; the function itself ignores objects
        # outside incoming/ (including its own moves to processed/ and failed/).
        ingest = PythonFunction(
            self,
            "ingest",
            name=f"{prefix}-ingest",
            location=cfg.region,
            description="Stores DICOM files uploaded to the staging bucket in the DICOM store.",
            entry_point="ingest_dicom_object",
            source=source,
            sizing=_sizing(cfg.functions.ingest),
            environment={**common_env, "STAGING_BUCKET": staging.name},
            labels=labels,
            build_service_account=builder.resource_name,
            trigger=StorageTrigger(bucket=staging.name, region=cfg.region),
        )
        stores.grant_dicom_write(ingest.member)
        staging.grant_object_admin(ingest.member)
        # Project-level by design: Eventarc has no per-trigger resource to bind these to.
        ProjectIamMember(
            self,
            "ingest_event_receiver",
            project=cfg.project_id,
            role="roles/eventarc.eventReceiver",
            member=ingest.member,
        )
        ProjectIamMember(
            self,
            "storage_agent_publisher",
            project=cfg.project_id,
            role="roles/pubsub.publisher",
            member=agents.storage,
        )

        # DICOM store notification -> push subscription -> process function.
        processor = PythonFunction(
            self,
            "processor",
            name=f"{prefix}-process",
            location=cfg.region,
            description="Analyzes each new DICOM instance, records FHIR results, raises alerts.",
            entry_point="process_dicom_instance",
            source=source,
            sizing=_sizing(cfg.functions.processor),
            environment={
                **common_env,
                "FHIR_BASE_URL": stores.fhir_base_url,
                "ALERTS_TOPIC": critical_alerts.id,
                "PIPELINE_SETTINGS": cfg.pipeline.model_dump_json(),
            },
            labels=labels,
            build_service_account=builder.resource_name,
        )
        if cfg.pipeline.structured_report:
            # STOW-RS of the SR: no predefined role has dicomWebWrite without more (dicomEditor
            # adds delete); a custom role would be a project-level object. Store-level only.
            stores.grant_dicom_write(processor.member)
        else:
            stores.grant_dicom_read(processor.member)
        stores.grant_fhir_resource_edit(processor.member)
        critical_alerts.grant_publish(processor.member)

        pusher = ServiceAccount(
            self,
            "push_identity",
            account_id=f"{prefix}-push",
            display_name="Signs Pub/Sub pushes to the processor",
        )
        processor.grant_invoke(pusher.member)
        subscription = PushSubscription(
            self,
            "processor_subscription",
            name=f"{prefix}-process-dicom-events",
            topic=dicom_events,
            dead_letter=dead_letters,
            endpoint=processor.uri,
            audience=processor.uri,
            push_service_account=pusher.email,
            # A push is acknowledged by the HTTP response; it must not be redelivered while the
            # processor is still working on it.
            ack_deadline_seconds=max(10, cfg.functions.processor.timeout_seconds),
            max_delivery_attempts=cfg.delivery.max_attempts,
            minimum_backoff_seconds=cfg.delivery.min_backoff_seconds,
            maximum_backoff_seconds=cfg.delivery.max_backoff_seconds,
            retention_days=days,
            pubsub_agent=agents.pubsub,
            labels=labels,
            # The SRs the processor stores notify this topic too: never push them back to it.
            message_filter=push_subscription_filter(),
        )

        # Structured logs -> log-based metrics -> alert policies -> e-mail, dashboard.
        Observability(
            self,
            "observability",
            prefix=prefix.replace("-", "_"),
            processor_service=processor.service_name,
            function_services=(processor.service_name, ingest.service_name),
            dead_letter_subscription=subscription.dead_letter_subscription_name,
            emails=cfg.alert_emails,
            failure_ratio=cfg.alerting.failure_ratio,
            window_seconds=cfg.alerting.window_minutes * 60,
            labels=labels,
        )

        self._outputs(
            {
                "dataset": stores.dataset.name,
                "dicom_store": stores.dicom_store_path,
                "fhir_store": stores.fhir_store_path,
                "dicomweb_url": stores.dicomweb_url,
                "fhir_base_url": stores.fhir_base_url,
                "dicom_events_topic": dicom_events.id,
                "dead_letter_topic": dead_letters.id,
                "critical_findings_topic": critical_alerts.id,
                "fhir_changes_topic": fhir_changes.id,
                "processor_subscription": subscription.name,
                "staging_bucket": staging.name,
                "processor_uri": processor.uri,
                "ingest_uri": ingest.uri,
                "processor_service_account": processor.service_account.email,
                "ingest_service_account": ingest.service_account.email,
                "push_service_account": pusher.email,
            }
        )
        self._after_dependencies(apis, key_grants)

    def _outputs(self, values: dict[str, str]) -> None:
        scope = Construct(self, "outputs")
        for name, value in values.items():
            # static_id: the output is named exactly `name`, not after its construct path.
            TerraformOutput(scope, name, value=value, static_id=True)

    def _after_dependencies(
        self, apis: ProjectService, key_grants: dict[str, TerraformResource]
    ) -> None:
        """Every resource waits for the APIs, and every CMEK-encrypted one for its key grant,
        so one `cdktn deploy` works on a fresh project.

        Only resources that reference no other resource (ROOT_TYPES) get explicit depends_on;
        every other one references a root and so waits for it (tests/infra/test_references.py
        checks that every resource reaches every API). Data sources are left alone: a
        dependency would defer reading them (the project number) to apply time, and the APIs
        they call (Resource Manager, Storage) are on in every new project."""
        # Top-level constructs keep their id as Terraform name; plain Python lookups where
        # possible, since every jsii round trip costs synth time.
        api_refs = [f"google_project_service.{apis.node.id}"]
        grant_refs = {purpose: _address(grant) for purpose, grant in key_grants.items()}
        for node in self.node.find_all():
            if not isinstance(node, ROOT_TYPES):
                continue
            purpose = CMEK_TYPES.get(type(node))
            # No construct here sets depends_on itself, so this assignment loses nothing.
            node.depends_on = api_refs + ([grant_refs[purpose]] if purpose in grant_refs else [])

    def _backend(self, env: Environment) -> None:
        backend = env.config.state_backend
        if backend.type == "gcs":
            assert backend.bucket is not None  # guaranteed by the schema
            GcsBackend(self, bucket=backend.bucket, prefix=backend.prefix or env.name)
        else:
            LocalBackend(self, path=f"terraform.{env.name}.tfstate")


def _address(resource: TerraformResource) -> str:
    """`type.name`, the form Terraform's depends_on takes."""
    return f"{resource.terraform_resource_type}.{resource.friendly_unique_id}"


# Resources that reference no other resource of the stack (see _after_dependencies).
ROOT_TYPES = (
    ServiceAccount,
    PubsubTopic,
    StorageBucket,
    HealthcareDataset,
    KmsKeyRing,
    LoggingMetric,
    MonitoringNotificationChannel,
    MonitoringDashboard,
    ProjectIamAuditConfig,
    LoggingProjectBucketConfig,
    ProjectIamMember,
)
# Resource types that take a CMEK key: created only after the service agents may use it.
CMEK_TYPES: dict[type, str] = {
    HealthcareDataset: "healthcare",
    PubsubTopic: "pubsub",
    StorageBucket: "storage",
}
