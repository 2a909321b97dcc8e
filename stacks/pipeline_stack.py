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
    TerraformStack,
    Token,
)
from cdktn_provider_google.compute_global_address import ComputeGlobalAddress
from cdktn_provider_google.compute_managed_ssl_certificate import (
    ComputeManagedSslCertificate,
)
from cdktn_provider_google.compute_region_network_endpoint_group import (
    ComputeRegionNetworkEndpointGroup,
)
from cdktn_provider_google.compute_ssl_policy import ComputeSslPolicy
from cdktn_provider_google.healthcare_dataset import HealthcareDataset
from cdktn_provider_google.kms_key_ring import KmsKeyRing
from cdktn_provider_google.logging_metric import LoggingMetric
from cdktn_provider_google.logging_project_bucket_config import LoggingProjectBucketConfig
from cdktn_provider_google.monitoring_dashboard import MonitoringDashboard
from cdktn_provider_google.monitoring_notification_channel import (
    MonitoringNotificationChannel,
)
from cdktn_provider_google.project_iam_audit_config import ProjectIamAuditConfig
from cdktn_provider_google.project_iam_custom_role import ProjectIamCustomRole
from cdktn_provider_google.project_iam_member import ProjectIamMember
from cdktn_provider_google.project_service import ProjectService
from cdktn_provider_google.provider import GoogleProvider
from cdktn_provider_google.pubsub_topic import PubsubTopic
from cdktn_provider_google.service_account import ServiceAccount
from cdktn_provider_google.storage_bucket import StorageBucket
from cdktn_provider_google_beta.google_project_service_identity import (
    GoogleProjectServiceIdentity,
)
from cdktn_provider_google_beta.provider import GoogleBetaProvider
from cdktn_provider_time.provider import TimeProvider
from constructs import Construct
from imaging_pipeline.notification_filter import push_subscription_filter
from imaging_pipeline.version import label_value as version_label

from modules.audit_logging import AuditLogging
from modules.build_identity import BuildIdentity
from modules.encryption_keys import EncryptionKey, EncryptionKeys
from modules.function_source import FunctionSource
from modules.healthcare_stores import HealthcareStores
from modules.messaging import DeadLetterTopic, Delivery, Push, Subscription, Topic
from modules.observability import Observability
from modules.private_bucket import ExpireRule, PrivateBucket
from modules.python_function import PythonFunction, Sizing, StorageTrigger
from modules.review_app import ReviewApp
from modules.service_agents import AGENT_SERVICES, ServiceAgents
from modules.vertex_endpoint_access import VertexEndpointAccess
from stacks import naming
from stacks.config import Environment, FunctionSizing
from stacks.consumers import Consumers

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
# Local Terraform state (state_backend type `local`): never under cdktf.out, which is disposable.
STATE_DIR_NAME = "state"
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
        beta = GoogleBetaProvider(
            self,
            "google-beta",
            project=cfg.project_id,
            region=cfg.region,
            default_labels=labels,
        )
        # time_sleep: the propagation waits the modules own (IAM grants, new metrics).
        TimeProvider(self, "time")
        services = list(SERVICES) + (["cloudkms"] if cfg.security.cmek else [])
        services += ["aiplatform"] if cfg.pipeline.vertex_endpoints() else []
        services += ["compute", "iap"] if cfg.review_app.enabled else []
        # One resource with for_each: one address for everything else to wait on.
        enabled = TerraformIterator.from_list([f"{name}.googleapis.com" for name in services])
        apis = ProjectService(
            self,
            "services",
            for_each=enabled,
            service=Token.as_string(enabled.value),
            disable_on_destroy=False,
        )
        # Service agents exist before anything grants them a role (created here, not assumed).
        agents = ServiceAgents(
            self,
            "agents",
            project_id=cfg.project_id,
            beta_provider=beta,
            # IAP's agent invokes the review app: created (like the others) before its grant.
            services=AGENT_SERVICES + (("iap",) if cfg.review_app.enabled else ()),
        )

        # Security baseline: audit trail, and (prod) customer-managed keys. Each encrypted
        # resource makes its key usable by its service agent and waits for it (modules/).
        AuditLogging(
            self,
            "audit",
            project_id=cfg.project_id,
            services=AUDITED_SERVICES,
            log_retention_days=cfg.retention.log_days,
        )
        keys = None
        if cfg.security.cmek:
            keys = EncryptionKeys(
                self,
                "cmek",
                name=f"{prefix}-{env.name}",
                # Pub/Sub's resources are global, so is its key; the others live in the region.
                purposes={"healthcare": cfg.region, "pubsub": "global", "storage": cfg.region},
                rotation_days=cfg.security.key_rotation_days,
                labels=labels,
            )

        def key(purpose: str) -> EncryptionKey | None:
            return keys.key(purpose) if keys else None

        # Topics: DICOM store notifications, FHIR changes, critical findings, and the dead-letter
        # topic of every subscription; messages stay in the environment's region.
        days = cfg.retention.pubsub_message_days
        topic_options = {
            "retention_days": days,
            "storage_regions": (cfg.region,),
            "labels": labels,
            "kms_key": key("pubsub"),
            "kms_agent": agents.pubsub if keys else None,
        }

        def topic(id_: str, name: str) -> Topic:
            return Topic(self, id_, name=f"{prefix}-{name}", **topic_options)  # type: ignore[arg-type]

        def dead_letter_topic(id_: str, name: str, hold: str) -> DeadLetterTopic:
            return DeadLetterTopic(
                self,
                id_,
                name=f"{prefix}-{name}",
                hold_name=f"{prefix}-{hold}",
                **topic_options,  # type: ignore[arg-type]
            )

        dicom_events = topic("dicom_events", "dicom-events")
        dead_letters = dead_letter_topic(
            "dicom_events_dead_letter",
            "dicom-events-dead-letter",
            "process-dicom-events-dead-letter",
        )
        fhir_changes = topic("fhir_changes", "fhir-changes")
        critical_alerts = topic("critical_alerts", "critical-findings")

        # PACS / modality --STOW-RS--> DICOM store; results go to the FHIR R4 store. The stores
        # notify the topics as the Healthcare agent (the module grants and waits).
        stores = HealthcareStores(
            self,
            "healthcare",
            name=naming.dataset_name(env),
            location=cfg.region,
            time_zone=cfg.time_zone,
            dicom_topic=dicom_events,
            fhir_topic=fhir_changes,
            service_agent=agents.healthcare,
            labels=labels,
            kms_key=key("healthcare"),
            protect=cfg.security.deletion_protection,
        )

        # Buckets: staging (gs://.../incoming/ -> ingest) and the functions' source.
        bucket_key = {"kms_key": key("storage"), "kms_agent": agents.storage if keys else None}
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
            **bucket_key,  # type: ignore[arg-type]
        )
        source_bucket = PrivateBucket(
            self,
            "function_source",
            name=f"{cfg.project_id}-{prefix}-source",
            location=cfg.region,
            labels=labels,
            noncurrent_days=cfg.retention.noncurrent_versions_days,
            **bucket_key,  # type: ignore[arg-type]
        )
        source = FunctionSource(
            self,
            "source",
            source_dir=HANDLERS_DIR,
            build_dir=Path(App.of(self).outdir) / ".function-source",
            bucket=source_bucket.name,
        )
        builder = BuildIdentity(
            self,
            "build",
            project_id=cfg.project_id,
            project_number=agents.project_number,
            region=cfg.region,
            account_id=f"{prefix}-build",
        )
        builder.read_source("build", source_bucket)

        # Which release a deployed function runs: visible in the console and in billing exports.
        function_labels = {**labels, "pipeline_version": version_label()}
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
            labels=function_labels,
            builder=builder,
            trigger=StorageTrigger(
                bucket=staging.name,
                region=cfg.region,
                project_id=cfg.project_id,
                storage_agent=agents.storage,
            ),
        )
        stores.grant_dicom_write("ingest", ingest.member)
        staging.grant_object_admin("ingest", ingest.member)

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
                # functions-framework's request threads: one per concurrent request.
                "THREADS": str(cfg.functions.processor.concurrency),
            },
            labels=function_labels,
            builder=builder,
        )
        if cfg.pipeline.structured_report:
            # STOW-RS of the SR: DICOMweb read and write only (a custom role; dicomEditor would
            # add delete), bound on the DICOM store, never on the dataset or project.
            stores.grant_dicom_write("processor", processor.member)
        else:
            stores.grant_dicom_read("processor", processor.member)
        stores.grant_fhir_resource_edit("processor", processor.member)
        critical_alerts.grant_publish("processor", processor.member)
        # Vertex AI models the routes use: prediction on those endpoints only.
        if endpoints := cfg.pipeline.vertex_endpoints():
            VertexEndpointAccess(
                self,
                "vertex",
                project_id=cfg.project_id,
                role_id=f"{prefix.replace('-', '_')}_vertex_predictor",
                endpoints=endpoints,
                beta_provider=beta,
            ).grant_predict("processor", processor.member)

        pusher = ServiceAccount(
            self,
            "push_identity",
            account_id=f"{prefix}-push",
            display_name="Signs Pub/Sub pushes to the processor",
        )
        processor.grant_invoke("push", pusher.member)
        delivery = {
            "max_attempts": cfg.delivery.max_attempts,
            "min_backoff_seconds": cfg.delivery.min_backoff_seconds,
            "max_backoff_seconds": cfg.delivery.max_backoff_seconds,
            "retention_days": days,
        }
        subscription = Subscription(
            self,
            "processor_subscription",
            name=f"{prefix}-process-dicom-events",
            topic=dicom_events,
            dead_letter=dead_letters,
            # A push is acknowledged by the HTTP response; it must not be redelivered while the
            # processor is still working on it.
            delivery=Delivery(
                ack_deadline_seconds=max(10, cfg.functions.processor.timeout_seconds), **delivery
            ),
            pubsub_agent=agents.pubsub,
            labels=labels,
            push=Push(
                endpoint=processor.uri,
                audience=processor.uri,
                service_account_email=pusher.email,
            ),
            # The SRs the processor stores notify this topic too: never push them back to it.
            message_filter=push_subscription_filter(cfg.pipeline),
        )

        # critical finding / FHIR change -> declared consumers (pull inbox or HTTPS push), each
        # with its own dead-letter topic and hold, like the processor's subscription.
        consumers = Consumers(
            self,
            "consumers",
            prefix=prefix,
            topics={"critical_findings": critical_alerts, "fhir_changes": fhir_changes},
            config=cfg.consumers,
            delivery=delivery,
            make_dead_letter_topic=dead_letter_topic,
            pubsub_agent=agents.pubsub,
            labels=labels,
        )

        review_outputs = self._review_app(
            env,
            agents,
            stores,
            source,
            builder,
            common_env,
            dicom_events,
            dead_letters,
            function_labels,
        )

        # Structured logs -> log-based metrics -> alert policies -> e-mail, dashboard.
        Observability(
            self,
            "observability",
            prefix=prefix.replace("-", "_"),
            processor_service=processor.service_name,
            function_services=(processor.service_name, ingest.service_name),
            dead_letter_subscriptions=(
                dead_letters.hold_subscription_name,
                *consumers.dead_letter_subscription_names,
            ),
            emails=cfg.alert_emails,
            failure_ratio=cfg.alerting.failure_ratio,
            window_seconds=cfg.alerting.window_minutes * 60,
            auto_close_seconds=cfg.alerting.auto_close_minutes * 60,
            notification_rate_limit_seconds=cfg.alerting.notification_rate_limit_minutes * 60,
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
                **consumers.outputs,
                **review_outputs,
            }
        )
        self._after_apis(apis)

    def _review_app(
        self,
        env: Environment,
        agents: ServiceAgents,
        stores: HealthcareStores,
        source: FunctionSource,
        builder: BuildIdentity,
        common_env: dict[str, str],
        events: Topic,
        dead_letters: DeadLetterTopic,
        labels: dict[str, str],
    ) -> dict[str, str]:
        """Review app (behind IAP): worklist <- FHIR; image + findings <- DICOMweb;
        accept/reject -> FHIR (status, Provenance); dead letters -> replay -> events topic."""
        cfg = env.config
        review_cfg = cfg.review_app
        if not review_cfg.enabled:
            return {}
        assert review_cfg.domain is not None  # guaranteed by the schema
        prefix = cfg.name_prefix
        review = ReviewApp(
            self,
            "review",
            name=f"{prefix}-review",
            location=cfg.region,
            project_id=cfg.project_id,
            project_number=agents.project_number,
            domain=review_cfg.domain,
            access=review_cfg.access,
            source=source,
            sizing=_sizing(review_cfg.sizing),
            environment={
                **common_env,
                "FHIR_BASE_URL": stores.fhir_base_url,
                "EVENTS_TOPIC": events.id,
                "DEAD_LETTER_SUBSCRIPTION": dead_letters.hold_subscription_id,
                "MONITORING_PROJECT": cfg.project_id,
                "METRIC_PREFIX": prefix.replace("-", "_"),
                **({"VIEWER_URL": review_cfg.viewer_url} if review_cfg.viewer_url else {}),
            },
            labels=labels,
            builder=builder,
            iap_agent=agents.iap,
        )
        stores.grant_dicom_read("review", review.member)
        stores.grant_fhir("review", review.fhir_role, review.member)
        dead_letters.grant_hold_consume("review", review.member)
        events.grant_publish("review", review.member)  # replay republishes to the events topic
        # The operations page's counts come from the log-based metrics (read-only).
        ProjectIamMember(
            self,
            "review_monitoring_viewer",
            project=cfg.project_id,
            role="roles/monitoring.viewer",
            member=review.member,
        )
        return {
            "review_app_address": review.address.address,
            "review_app_service_account": review.function.service_account.email,
        }

    def _outputs(self, values: dict[str, str]) -> None:
        scope = Construct(self, "outputs")
        for name, value in values.items():
            # static_id: the output is named exactly `name`, not after its construct path.
            TerraformOutput(scope, name, value=value, static_id=True)

    def _after_apis(self, apis: ProjectService) -> None:
        """Every resource waits for the APIs, so one deploy works on a fresh project.

        Only resources that reference no other resource (ROOT_TYPES) get the APIs added to
        their depends_on; every other one references a root and so waits for it
        (tests/infra/test_references.py checks that every resource reaches every API). Ordering
        among our own resources (key grants, build and trigger grants, metric waits) is each
        module's business. Data sources are left alone: a dependency would defer reading them
        (the project number) to apply time, and the APIs they call (Resource Manager, Storage)
        are on in every new project."""
        # Plain Python lookups where possible: every jsii round trip costs synth time.
        api_ref = f"google_project_service.{apis.node.id}"
        for node in self.node.find_all():
            if isinstance(node, ROOT_TYPES):
                node.depends_on = [api_ref, *(node.depends_on or [])]

    def _backend(self, env: Environment) -> None:
        backend = env.config.state_backend
        if backend.type == "gcs":
            assert backend.bucket is not None  # guaranteed by the schema
            GcsBackend(self, bucket=backend.bucket, prefix=backend.prefix or env.name)
        else:
            LocalBackend(self, path=local_state_path(env.name))


def local_state_path(env_name: str) -> str:
    """`state/<env>.tfstate` next to the output directory (the repository root for the default
    cdktf.out), relative to where Terraform runs (`<outdir>/stacks/<env>`): never inside the
    output, so cleaning cdktf.out keeps the state; the same bytes whatever the outdir."""
    return f"../../../{STATE_DIR_NAME}/{env_name}.tfstate"


# Resources that reference no other resource of the stack (see _after_apis).
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
    GoogleProjectServiceIdentity,
    # The review app's load balancer pieces that name what they point at by string.
    ComputeRegionNetworkEndpointGroup,
    ComputeSslPolicy,
    ComputeManagedSslCertificate,
    ComputeGlobalAddress,
    ProjectIamCustomRole,
)
