"""The typed schema of `environments/*.yaml`, and loading with errors a person can act on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from imaging_pipeline.settings import PipelineSettings
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stacks import config_errors, validations

ENVIRONMENTS_DIR = Path(__file__).resolve().parent.parent / "environments"

# Cloud Healthcare, Cloud Functions gen2, Vision and KMS are all offered in these regions.
REGIONS = frozenset(
    {
        "us-central1",
        "us-east1",
        "us-east4",
        "us-west1",
        "us-west2",
        "northamerica-northeast1",
        "southamerica-east1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast3",
        "asia-south1",
        "asia-southeast1",
        "australia-southeast1",
    }
)
# Memory sizes Cloud Functions gen2 accepts as `available_memory` (MiB).
MEMORY_MIB = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)

_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


class ConfigError(Exception):
    """A configuration file is invalid; `str()` is the message for the person who wrote it."""


def _check(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


ProjectId = Annotated[
    str, _check(_PROJECT_ID, "project id (6-30 chars: lowercase letters, digits, hyphens)")
]
LabelValue = Annotated[
    str, _check(_LABEL_VALUE, "label value (up to 63 lowercase letters, digits, _ or -)")
]
Email = Annotated[str, _check(_EMAIL, "e-mail address")]
BucketName = Annotated[str, _check(_BUCKET, "bucket name")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Labels(_Strict):
    environment: LabelValue
    cost_centre: LabelValue
    data_classification: Literal["phi", "confidential", "internal", "synthetic"]


class StateBackend(_Strict):
    """Where Terraform keeps state: a local file by default, a GCS bucket for teams and CI."""

    type: Literal["local", "gcs"] = "local"
    bucket: BucketName | None = None
    prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._/-]*$")

    @model_validator(mode="after")
    def _bucket_for_gcs(self) -> StateBackend:
        if self.type == "gcs" and not self.bucket:
            raise ValueError("a 'gcs' state backend needs 'bucket'")
        if self.type == "local" and self.bucket:
            raise ValueError("'bucket' is only for type 'gcs'")
        return self


class FunctionSizing(_Strict):
    memory_mib: int = Field(default=512, description=f"One of {', '.join(map(str, MEMORY_MIB))}.")
    cpu: str = Field(
        default="1",
        pattern=r"^(0\.(0[8-9]|[1-9][0-9]?)|[1-8])$",
        description="vCPUs: a fraction below 1 or 1 to 8.",
    )
    timeout_seconds: int = Field(default=300, ge=1, le=540)
    min_instances: int = Field(default=0, ge=0, le=1000)
    max_instances: int = Field(default=10, ge=1, le=1000)
    concurrency: int = Field(default=1, ge=1, le=1000, description="Requests per instance.")

    @field_validator("memory_mib")
    @classmethod
    def _memory(cls, value: int) -> int:
        if value not in MEMORY_MIB:
            raise ValueError(f"{value} is not one of {', '.join(map(str, MEMORY_MIB))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FunctionSizing:
        if self.max_instances < self.min_instances:
            low, high = self.min_instances, self.max_instances
            raise ValueError(f"max_instances ({high}) is below min_instances ({low})")
        if self.concurrency > 1 and float(self.cpu) < 1:
            raise ValueError("concurrency above 1 needs cpu of at least 1")
        return self


class Functions(_Strict):
    processor: FunctionSizing = FunctionSizing()
    ingest: FunctionSizing = FunctionSizing(memory_mib=512, timeout_seconds=120)


class Retention(_Strict):
    staging_processed_days: int = Field(
        default=30, ge=1, le=3650, description="Days before processed/ objects are deleted."
    )
    staging_failed_days: int = Field(
        default=90, ge=1, le=3650, description="Days before failed/ objects are deleted."
    )
    noncurrent_versions_days: int = Field(default=30, ge=1, le=3650)
    pubsub_message_days: int = Field(
        default=7, ge=1, le=31, description="Retention of Pub/Sub messages (max 31)."
    )
    log_days: int = Field(default=30, ge=1, le=3650)


class Security(_Strict):
    cmek: bool = Field(default=False, description="Customer-managed encryption keys (Cloud KMS).")
    key_rotation_days: int = Field(default=90, ge=1, le=365)
    deletion_protection: bool = Field(
        default=False, description="prevent_destroy on the dataset and stores."
    )


class Delivery(_Strict):
    """How the DICOM events subscription retries pushes to the processor."""

    max_attempts: int = Field(
        default=5, ge=5, le=100, description="Delivery attempts before a message is dead-lettered."
    )
    min_backoff_seconds: int = Field(
        default=10, ge=0, le=600, description="First retry delay (exponential backoff)."
    )
    max_backoff_seconds: int = Field(default=600, ge=0, le=600, description="Longest retry delay.")

    @model_validator(mode="after")
    def _ordered(self) -> Delivery:
        if self.min_backoff_seconds > self.max_backoff_seconds:
            raise ValueError(
                f"min_backoff_seconds ({self.min_backoff_seconds}) is above "
                f"max_backoff_seconds ({self.max_backoff_seconds})"
            )
        return self


class Alerting(_Strict):
    """Thresholds of the alert policies (notifications go to `alert_emails`)."""

    failure_ratio: float = Field(
        default=0.05, gt=0, lt=1, description="Alert when failed / handled instances exceed this."
    )
    window_minutes: int = Field(
        default=5, ge=1, le=1440, description="Window the failure ratio and error counts cover."
    )
    auto_close_minutes: int = Field(
        default=30,
        ge=30,
        le=10080,
        description="Incidents close by themselves after this long without a new match "
        "(Monitoring's minimum is 30), so the next one notifies again.",
    )
    notification_rate_limit_minutes: int = Field(
        default=5,
        ge=5,
        le=1440,
        description="At most one notification per this period for each critical-finding "
        "alert (log-match alerts; Monitoring's minimum is 5).",
    )


class Consumer(_Strict):
    """Who receives a topic's messages: a pull inbox (default), or HTTPS push."""

    type: Literal["pull", "push"] = Field(
        default="pull",
        description="`pull`: a subscription `subscribers` pull from; `push`: POST to "
        "`push_endpoint` with an OIDC token.",
    )
    push_endpoint: str | None = Field(
        default=None,
        pattern=r"^https://\S+$",
        description="HTTPS endpoint (only and required for type `push`).",
    )
    subscribers: tuple[str, ...] = Field(
        default=(),
        description="IAM members allowed to pull (e.g. `group:radiology-oncall@example.org`).",
    )
    ack_deadline_seconds: int = Field(
        default=60, ge=10, le=600, description="Time a consumer has to acknowledge a message."
    )

    @field_validator("subscribers")
    @classmethod
    def _members(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        for member in members:
            if not re.fullmatch(r"(user|group|serviceAccount|domain):[^\s@]*@?[^\s]+", member):
                raise ValueError(
                    f"{member!r} is not an IAM member (user:, group:, serviceAccount: or domain:)"
                )
        return members

    @model_validator(mode="after")
    def _endpoint_for_push(self) -> Consumer:
        if self.type == "push" and not self.push_endpoint:
            raise ValueError("a 'push' consumer needs 'push_endpoint'")
        if self.type == "pull" and self.push_endpoint:
            raise ValueError("'push_endpoint' is only for type 'push'")
        return self


class Consumers(_Strict):
    """Declared consumers of the critical-findings and FHIR-changes topics."""

    critical_findings: Consumer = Consumer()
    fhir_changes: Consumer = Consumer()


class Ci(_Strict):
    """What the setup stack (`python -m stacks.setup_app`) needs for CI to deploy."""

    github_repository: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        description="`owner/name` of the GitHub repository whose workflows may deploy "
        "(the Workload Identity provider accepts only its tokens).",
    )
    smoke_test: bool = Field(
        default=False,
        description="Let the deploy identity run `imaging smoke` (DICOM write, FHIR edit on "
        "this environment's stores): for environments without real patient data.",
    )


_IAM_MEMBER = re.compile(r"^(user|group):[^@\s:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


class ReviewApp(_Strict):
    """The review web app (worklist, study page, review, dead-letter replay) behind IAP."""

    enabled: bool = Field(default=False, description="Deploy the review app.")
    domain: str | None = Field(
        default=None,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        max_length=253,
        description="Host name of its HTTPS load balancer (Google-managed certificate).",
    )
    access: tuple[str, ...] = Field(
        default=(), description="Who may enter: IAM members, `group:NAME@DOMAIN` or `user:...`."
    )
    viewer_url: str | None = Field(
        default=None,
        pattern=r"^https://\S*\{study_uid\}\S*$",
        description="A DICOMweb viewer link for the study page; {study_uid} is replaced.",
    )
    sizing: FunctionSizing = Field(
        default=FunctionSizing(memory_mib=1024, timeout_seconds=60, max_instances=5, concurrency=8),
        description="Sizing of the review app's function (pages are short requests).",
    )

    @field_validator("access")
    @classmethod
    def _members(cls, access: tuple[str, ...]) -> tuple[str, ...]:
        for member in access:
            if not _IAM_MEMBER.fullmatch(member):
                raise ValueError(f"{member!r} is not group:NAME@DOMAIN or user:NAME@DOMAIN")
        return access

    @model_validator(mode="after")
    def _complete(self) -> ReviewApp:
        if self.enabled and (not self.domain or not self.access):
            raise ValueError(
                "an enabled review_app needs 'domain' and at least one 'access' member"
            )
        return self


class EnvironmentConfig(_Strict):
    """One deployment of the pipeline: a GCP project and region with its own settings."""

    project_id: ProjectId
    region: str
    name_prefix: str = Field(
        default="imaging",
        pattern=r"^[a-z][a-z0-9-]{1,14}$",
        description="Prefix of every resource name (2-15 chars).",
    )
    labels: Labels
    state_backend: StateBackend = StateBackend()
    alert_emails: tuple[Email, ...] = Field(min_length=1)
    time_zone: str = Field(default="UTC", pattern=r"^[A-Za-z_]+(/[A-Za-z_+-]+)*$")
    functions: Functions = Functions()
    retention: Retention = Retention()
    security: Security = Security()
    delivery: Delivery = Delivery()
    alerting: Alerting = Alerting()
    consumers: Consumers = Consumers()
    ci: Ci = Ci()
    pipeline: PipelineSettings = PipelineSettings()
    review_app: ReviewApp = ReviewApp()

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in REGIONS:
            raise ValueError(
                f"{value!r} is not a supported region; allowed: {', '.join(sorted(REGIONS))}"
            )
        return value


class Environment(BaseModel):
    """A loaded environment: its name (the file's stem, also the stack name) and config."""

    model_config = ConfigDict(frozen=True)
    name: str
    path: Path
    config: EnvironmentConfig


def load_environment(path: Path) -> Environment:
    name = path.stem
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", name):
        raise ConfigError(f"{path}: file name must be a lowercase environment name like 'dev'")
    try:
        text = path.read_text(encoding="utf-8")
        raw = validations.load_yaml_unique(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except validations.DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc.problem.key}: {exc.problem.message}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(config_errors.describe_yaml_error(path, exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    try:
        config = EnvironmentConfig.model_validate(raw)
    except ValidationError as exc:
        lines = config_errors.describe_validation(path, exc.errors(), EnvironmentConfig, text)
        raise ConfigError("\n".join(lines)) from None
    if config.labels.environment != name:
        raise ConfigError(
            f"{path}: labels.environment: must equal the file's name {name!r}, "
            f"not {config.labels.environment!r}"
        )
    found = validations.problems(name, config)
    if found:
        raise ConfigError("\n".join(f"{path}: {p.key}: {p.message}" for p in found))
    return Environment(name=name, path=path, config=config)


def discover(directory: Path = ENVIRONMENTS_DIR) -> list[Path]:
    """Every environment file; any other file (`qa.yml`, `qa.json`) is an error rather than an
    environment that silently does not exist. Names starting with `_` or `.` are ignored."""
    found: list[Path] = []
    others: list[Path] = []
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if path.name.startswith(("_", ".")):
            continue
        (found if path.suffix == ".yaml" and path.is_file() else others).append(path)
    if others:
        raise ConfigError(
            "\n".join(
                f"{p}: not an environment file: environments are `<name>.yaml` files"
                + (f"; rename it to {p.stem}.yaml" if p.suffix in (".yml", ".YAML") else "")
                for p in others
            )
        )
    return found


def load_environments(
    selected: list[str] | None = None, directory: Path = ENVIRONMENTS_DIR
) -> list[Environment]:
    """Loads every environment file, or only `selected` ones (by name), failing on unknown names."""
    paths = {p.stem: p for p in discover(directory)}
    if not paths:
        raise ConfigError(f"{directory}: no environment files (*.yaml)")
    names = selected or list(paths)
    unknown = [n for n in names if n not in paths]
    if unknown:
        raise ConfigError(
            f"unknown environment(s): {', '.join(unknown)}; available: {', '.join(paths)}"
        )
    return [load_environment(paths[n]) for n in names]
