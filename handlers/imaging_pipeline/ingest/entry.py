"""The ingest Cloud Function: a GCS object-finalize CloudEvent on the staging bucket.

Environment (set by the infrastructure): `DICOMWEB_URL` (the store's DICOMweb base; the
Healthcare API URL in Google Cloud, Orthanc locally), `DICOM_STORE` (the store's resource name,
for logs), `STAGING_BUCKET` (events from any other bucket are ignored), `ENVIRONMENT`,
`LOG_LEVEL`. Locally `STORAGE_EMULATOR_HOST` points google-cloud-storage at an emulator.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import functions_framework

from imaging_pipeline.errors import PermanentError
from imaging_pipeline.logs import configure_logging, event_context, log_event
from imaging_pipeline.runtime_env import dicom_store, http_url, log_level, require

if TYPE_CHECKING:
    # handlers/main.py imports this module in both functions: pydicom, google-cloud-storage and
    # requests are imported on the first ingest event instead, not on every cold start.
    import requests
    from cloudevents.http import CloudEvent
    from google.cloud import storage

    from imaging_pipeline.ingest.handler import IngestResult

FINALIZED = "google.cloud.storage.object.v1.finalized"
REQUIRED = ("DICOMWEB_URL", "DICOM_STORE", "STAGING_BUCKET", "ENVIRONMENT", "LOG_LEVEL")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    dicomweb_url: str
    dicom_store: str
    staging_bucket: str
    environment: str
    log_level: str


def load_ingest_config(environ: Mapping[str, str] | None = None) -> IngestConfig:
    env = os.environ if environ is None else environ
    require(env, REQUIRED)
    return IngestConfig(
        dicomweb_url=http_url("DICOMWEB_URL", env["DICOMWEB_URL"]),
        dicom_store=dicom_store(env),
        staging_bucket=env["STAGING_BUCKET"].strip(),
        environment=env["ENVIRONMENT"].strip(),
        log_level=log_level(env),
    )


@dataclass(frozen=True)
class _Clients:
    config: IngestConfig
    storage: storage.Client
    session: requests.Session


@functools.cache
def _clients() -> _Clients:
    """Built once per instance and reused across events (connection pools, credentials)."""
    from google.cloud import storage

    from imaging_pipeline.adapters.http import session_for

    config = load_ingest_config()
    configure_logging(config.log_level)
    return _Clients(config, storage.Client(), session_for(config.dicomweb_url))


def handle_event(event_type: str, data: Mapping[str, object], clients: _Clients) -> IngestResult:
    from imaging_pipeline.ingest.handler import IngestResult, StagedObject, ingest_object

    if event_type != FINALIZED:
        log_event(
            logger,
            logging.DEBUG,
            "not an object-finalize event; ignored",
            event="ingest",
            outcome="ignored",
            event_type=event_type,
        )
        return IngestResult("ignored")
    try:
        obj = StagedObject.from_event_data(data)
    except PermanentError as exc:
        # Acknowledge: redelivering a malformed event cannot help.
        log_event(
            logger, logging.ERROR, str(exc), event="ingest", outcome="ignored", reason=exc.reason
        )
        return IngestResult("ignored", reason=exc.reason)
    if obj.bucket != clients.config.staging_bucket:
        log_event(
            logger,
            logging.WARNING,
            "event from another bucket; ignored",
            event="ingest",
            outcome="ignored",
            bucket=obj.bucket,
        )
        return IngestResult("ignored")
    return ingest_object(
        obj,
        storage_client=clients.storage,
        session=clients.session,
        dicomweb_url=clients.config.dicomweb_url,
    )


@functions_framework.cloud_event
def ingest_dicom_object(cloud_event: CloudEvent) -> None:
    """Entry point; raising (transient errors) makes Eventarc redeliver the event."""
    clients = _clients()
    project = clients.config.dicom_store.split("/")[1]
    with event_context(None, project):
        data = cloud_event.data if isinstance(cloud_event.data, Mapping) else {}
        handle_event(str(cloud_event["type"]), data, clients)
