"""One environment of the imaging pipeline, read top to bottom like the data flow in README.md."""

from __future__ import annotations

from cdktf import GcsBackend, LocalBackend, TerraformStack
from cdktf_cdktf_provider_google.project_service import ProjectService
from cdktf_cdktf_provider_google.provider import GoogleProvider
from constructs import Construct

from stacks.config import Environment

# APIs the pipeline calls; cloudkms is added when CMEK is on.
SERVICES = (
    "healthcare", "vision", "cloudfunctions", "run", "cloudbuild", "artifactregistry",
    "eventarc", "pubsub", "storage", "logging", "monitoring", "iam",
)


class PipelineStack(TerraformStack):
    def __init__(self, scope: Construct, env: Environment) -> None:
        super().__init__(scope, env.name)
        cfg = env.config
        self._backend(env)
        GoogleProvider(
            self, "google",
            project=cfg.project_id,
            region=cfg.region,
            default_labels=cfg.labels.model_dump(),
        )
        services = list(SERVICES) + (["cloudkms"] if cfg.security.cmek else [])
        for name in services:
            ProjectService(
                self, f"service_{name}",
                service=f"{name}.googleapis.com",
                disable_on_destroy=False,
            )

    def _backend(self, env: Environment) -> None:
        backend = env.config.state_backend
        if backend.type == "gcs":
            assert backend.bucket is not None  # guaranteed by the schema
            GcsBackend(self, bucket=backend.bucket, prefix=backend.prefix or env.name)
        else:
            LocalBackend(self, path=f"terraform.{env.name}.tfstate")
