"""One staging object, end to end: read it, check it, store it, move it.

Outcomes: `processed` (stored, or the store already had it), `failed` (not DICOM, corrupt or
rejected by the store: moved to failed/ with the reason in its metadata), `ignored` (not under
incoming/), `gone` (the generation no longer exists: an earlier delivery of this event already
moved it). Transient errors (network, 429, 5xx) propagate so that Eventarc redelivers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import requests
from google.api_core.exceptions import NotFound
from google.cloud import storage

from imaging_pipeline.adapters.dicomweb_stow import StowOutcome, stow_instance
from imaging_pipeline.adapters.gcs_move import SourceVersion, move_object
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.ingest.validation import ObjectRejectedError, check_dicom
from imaging_pipeline.logs import log_event, register_dataset_phi

INCOMING_PREFIX = "incoming/"
PROCESSED_PREFIX = "processed/"
FAILED_PREFIX = "failed/"
FAILURE_REASON_KEY = "ingest-failure-reason"
FAILURE_DETAIL_KEY = "ingest-failure-detail"
SOURCE_GENERATION_KEY = "ingest-source-generation"
STOW_OUTCOME_KEY = "ingest-stow-outcome"

Outcome = Literal["processed", "failed", "ignored", "gone"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagedObject:
    """What a GCS object-finalize event names: bucket, object and the generation written."""

    bucket: str
    name: str
    generation: int

    @classmethod
    def from_event_data(cls, data: Mapping[str, Any]) -> StagedObject:
        try:
            return cls(
                bucket=str(data["bucket"]),
                name=str(data["name"]),
                generation=int(data["generation"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(
                "malformed_event", "object event without bucket/name/generation"
            ) from exc


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    destination: str | None = None
    reason: str | None = None
    stow: StowOutcome | None = None
    sop_instance_uid: str | None = None


def ingest_object(
    obj: StagedObject,
    *,
    storage_client: storage.Client,
    session: requests.Session,
    dicomweb_url: str,
) -> IngestResult:
    fields: dict[str, Any] = {
        "event": "ingest",
        "bucket": obj.bucket,
        "object": obj.name,
        "generation": obj.generation,
    }
    if not obj.name.startswith(INCOMING_PREFIX) or obj.name.endswith("/"):
        log_event(
            logger, logging.DEBUG, "not under incoming/; ignored", outcome="ignored", **fields
        )
        return IngestResult("ignored")
    bucket = storage_client.bucket(obj.bucket)
    source = bucket.get_blob(obj.name, generation=obj.generation)
    if source is None:
        # Moved by an earlier delivery of this event (or overwritten/deleted by someone else).
        log_event(
            logger,
            logging.INFO,
            "object generation no longer exists; nothing to do",
            outcome="gone",
            **fields,
        )
        return IngestResult("gone")
    version = SourceVersion.of(source)
    try:
        payload = source.download_as_bytes(if_generation_match=obj.generation)
    except NotFound:
        log_event(
            logger,
            logging.INFO,
            "object deleted while reading; nothing to do",
            outcome="gone",
            **fields,
        )
        return IngestResult("gone")

    relative = obj.name.removeprefix(INCOMING_PREFIX)
    metadata = {SOURCE_GENERATION_KEY: str(obj.generation)}
    try:
        instance = check_dicom(payload)
        register_dataset_phi(instance.header)  # scrub patient values from every later line
        fields["sop_instance_uid"] = instance.sop_instance_uid
        stow = stow_instance(session, dicomweb_url, instance)
    except ObjectRejectedError as failure:
        metadata |= {FAILURE_REASON_KEY: failure.reason, FAILURE_DETAIL_KEY: failure.detail}
        moved = move_object(bucket, version, relative, FAILED_PREFIX, metadata)
        log_event(
            logger,
            logging.WARNING,
            f"ingest failed: {failure.reason}",
            outcome="failed",
            reason=failure.reason,
            detail=failure.detail,
            destination=moved.destination,
            **fields,
        )
        return IngestResult(
            "failed",
            moved.destination,
            failure.reason,
            sop_instance_uid=fields.get("sop_instance_uid"),
        )
    metadata[STOW_OUTCOME_KEY] = stow
    moved = move_object(bucket, version, relative, PROCESSED_PREFIX, metadata)
    log_event(
        logger,
        logging.INFO,
        "ingested",
        outcome="processed",
        stow=stow,
        destination=moved.destination,
        **fields,
    )
    return IngestResult(
        "processed", moved.destination, stow=stow, sop_instance_uid=instance.sop_instance_uid
    )
