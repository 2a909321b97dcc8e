"""The ingest function's configuration and event routing (before any I/O happens)."""

from __future__ import annotations

from typing import Any

import pytest
from imaging_pipeline.ingest.entry import (
    FINALIZED,
    IngestConfig,
    _Clients,
    handle_event,
    load_ingest_config,
)
from imaging_pipeline.runtime_env import ConfigurationError

from imaging_cli.store_target import resolve_store

ENV = {
    "DICOMWEB_URL": "http://127.0.0.1:8042/dicom-web/",
    "DICOM_STORE": "projects/p/locations/l/datasets/d/dicomStores/s",
    "STAGING_BUCKET": "staging",
    "ENVIRONMENT": "dev",
    "LOG_LEVEL": "info",
}


def test_config_from_environment() -> None:
    config = load_ingest_config(ENV)
    assert config == IngestConfig(
        "http://127.0.0.1:8042/dicom-web",
        "projects/p/locations/l/datasets/d/dicomStores/s",
        "staging",
        "dev",
        "INFO",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"STAGING_BUCKET": ""}, "STAGING_BUCKET"),
        ({"DICOM_STORE": "my-store"}, "DICOM_STORE must look like"),
        ({"DICOMWEB_URL": "orthanc:8042"}, r"DICOMWEB_URL must be an http\(s\) URL"),
    ],
)
def test_config_errors_name_the_variable(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_ingest_config({**ENV, **change})


class _Untouchable:
    """Stands for the storage client and session: routing decisions must not use them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected I/O: {name}")


CLIENTS = _Clients(load_ingest_config(ENV), _Untouchable(), _Untouchable())  # type: ignore[arg-type]


def test_other_event_types_are_ignored() -> None:
    result = handle_event(
        "google.cloud.storage.object.v1.deleted",
        {"bucket": "staging", "name": "incoming/a.dcm", "generation": "1"},
        CLIENTS,
    )
    assert result.outcome == "ignored"


def test_other_buckets_are_ignored() -> None:
    result = handle_event(
        FINALIZED, {"bucket": "elsewhere", "name": "incoming/a.dcm", "generation": "1"}, CLIENTS
    )
    assert result.outcome == "ignored"


def test_malformed_event_is_acknowledged_not_retried() -> None:
    result = handle_event(FINALIZED, {"bucket": "staging", "name": "incoming/a.dcm"}, CLIENTS)
    assert result.outcome == "ignored" and result.reason == "malformed_event"


def test_store_targets() -> None:
    google = resolve_store("projects/p/locations/europe-west4/datasets/d/dicomStores/s")
    assert google.dicomweb_url == (
        "https://healthcare.googleapis.com/v1/projects/p/locations/"
        "europe-west4/datasets/d/dicomStores/s/dicomWeb"
    )
    assert (
        resolve_store("http://127.0.0.1:8042/dicom-web/").dicomweb_url
        == "http://127.0.0.1:8042/dicom-web"
    )
    with pytest.raises(ValueError, match="not a DICOMweb URL"):
        resolve_store("dicomStores/s")
