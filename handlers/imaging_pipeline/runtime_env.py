"""The processor's runtime configuration, read once from its environment.

The infrastructure sets these variables on the deployed function:

- `DICOMWEB_URL`: DICOMweb base URL. In Google Cloud
  `https://healthcare.googleapis.com/v1/projects/P/locations/L/datasets/D/dicomStores/S/dicomWeb`;
  locally any DICOMweb server, e.g. Orthanc's `http://127.0.0.1:PORT/dicom-web`.
- `DICOM_STORE`: `projects/P/locations/L/datasets/D/dicomStores/S`, the only store whose events
  this processor accepts. Locally it is a name in the same form (e.g.
  `projects/local/locations/local/datasets/local/dicomStores/orthanc`) that stands for the local
  server at `DICOMWEB_URL`, so tests and the demo publish exactly the message format Google sends.
- `FHIR_BASE_URL`: FHIR R4 base (`.../fhirStores/F/fhir` in Google Cloud).
- `ALERTS_TOPIC`: `projects/P/topics/T` for critical findings.
- `PIPELINE_SETTINGS`: JSON of `imaging_pipeline.settings.PipelineSettings`.
- `ENVIRONMENT`, `LOG_LEVEL`.
- Optional: `VISION_ENDPOINT` (default `https://vision.googleapis.com`), for a local server that
  speaks the Vision REST protocol; `VERTEX_ENDPOINT` (default: each endpoint's own regional or
  dedicated URL), for a local server that speaks Vertex AI's `:predict` protocol.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from imaging_pipeline.events import STORE_PATH
from imaging_pipeline.settings import PipelineSettings

REQUIRED = (
    "DICOMWEB_URL",
    "DICOM_STORE",
    "FHIR_BASE_URL",
    "ALERTS_TOPIC",
    "PIPELINE_SETTINGS",
    "ENVIRONMENT",
    "LOG_LEVEL",
)
_TOPIC = re.compile(r"projects/[a-z][a-z0-9-]{4,29}/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}")
_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
DEFAULT_VISION_ENDPOINT = "https://vision.googleapis.com"


class ConfigurationError(Exception):
    """The function's environment is incomplete or invalid; the message names the variable."""


@dataclass(frozen=True)
class ProcessorConfig:
    dicomweb_url: str
    dicom_store: str
    fhir_base_url: str
    alerts_topic: str
    pipeline: PipelineSettings
    environment: str
    log_level: str
    vision_endpoint: str = DEFAULT_VISION_ENDPOINT
    vertex_endpoint: str | None = None

    @property
    def project_id(self) -> str:
        """The project of the DICOM store; trace ids in logs are scoped to it."""
        return self.dicom_store.split("/")[1]


def http_url(name: str, value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ConfigurationError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def require(env: Mapping[str, str], names: tuple[str, ...]) -> None:
    """Every missing variable is named at once (shared by both functions' loaders)."""
    missing = [name for name in names if not env.get(name, "").strip()]
    if missing:
        raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")


def dicom_store(env: Mapping[str, str]) -> str:
    store = env["DICOM_STORE"].strip()
    if not STORE_PATH.fullmatch(store):
        raise ConfigurationError(
            "DICOM_STORE must look like projects/P/locations/L/datasets/D/dicomStores/S, "
            f"got {store!r}"
        )
    return store


def log_level(env: Mapping[str, str]) -> str:
    level = env["LOG_LEVEL"].strip().upper()
    if level not in _LOG_LEVELS:
        raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(sorted(_LOG_LEVELS))}")
    return level


def load_config(environ: Mapping[str, str] | None = None) -> ProcessorConfig:
    """Read and validate the environment; every problem is reported by variable name."""
    env = os.environ if environ is None else environ
    require(env, REQUIRED)
    store = dicom_store(env)
    topic = env["ALERTS_TOPIC"].strip()
    if not _TOPIC.fullmatch(topic):
        raise ConfigurationError(f"ALERTS_TOPIC must look like projects/P/topics/T, got {topic!r}")
    level = log_level(env)
    try:
        pipeline = PipelineSettings.model_validate_json(env["PIPELINE_SETTINGS"])
    except ValidationError as exc:
        raise ConfigurationError(f"PIPELINE_SETTINGS is invalid: {exc}") from exc
    return ProcessorConfig(
        dicomweb_url=http_url("DICOMWEB_URL", env["DICOMWEB_URL"]),
        dicom_store=store,
        fhir_base_url=http_url("FHIR_BASE_URL", env["FHIR_BASE_URL"]),
        alerts_topic=topic,
        pipeline=pipeline,
        environment=env["ENVIRONMENT"].strip(),
        log_level=level,
        vision_endpoint=http_url(
            "VISION_ENDPOINT", env.get("VISION_ENDPOINT", "").strip() or DEFAULT_VISION_ENDPOINT
        ),
        vertex_endpoint=(
            http_url("VERTEX_ENDPOINT", env["VERTEX_ENDPOINT"])
            if env.get("VERTEX_ENDPOINT", "").strip()
            else None
        ),
    )
