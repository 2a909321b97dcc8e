"""The processor's environment: every variable checked, problems named."""

from __future__ import annotations

import pytest
from imaging_pipeline.runtime_env import ConfigurationError, load_config

GOOD = {
    "DICOMWEB_URL": "https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/"
    "dicomStores/s/dicomWeb",
    "DICOM_STORE": "projects/p/locations/l/datasets/d/dicomStores/s",
    "FHIR_BASE_URL": "https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/"
    "fhirStores/f/fhir",
    "ALERTS_TOPIC": "projects/proj-1/topics/alerts",
    "PIPELINE_SETTINGS": '{"analyzer": "local"}',
    "ENVIRONMENT": "dev",
    "LOG_LEVEL": "info",
}


def test_loads_a_complete_environment() -> None:
    config = load_config(GOOD)
    assert config.pipeline.analyzer == "local"
    assert config.log_level == "INFO"
    assert config.project_id == "p"
    assert config.vision_endpoint == "https://vision.googleapis.com"
    assert not config.dicomweb_url.endswith("/")


def test_names_every_missing_variable() -> None:
    env = {k: v for k, v in GOOD.items() if k not in ("FHIR_BASE_URL", "ALERTS_TOPIC")}
    with pytest.raises(ConfigurationError, match="FHIR_BASE_URL, ALERTS_TOPIC"):
        load_config(env)


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("DICOM_STORE", "projects/p/dicomStores/s", "DICOM_STORE"),
        ("ALERTS_TOPIC", "alerts", "ALERTS_TOPIC"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("DICOMWEB_URL", "ftp://x", "DICOMWEB_URL"),
        ("PIPELINE_SETTINGS", '{"analyzer": "magic"}', "PIPELINE_SETTINGS"),
        ("PIPELINE_SETTINGS", "not json", "PIPELINE_SETTINGS"),
    ],
)
def test_invalid_values_name_the_variable(key: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        load_config({**GOOD, key: value})


def test_local_vision_endpoint() -> None:
    config = load_config({**GOOD, "VISION_ENDPOINT": "http://127.0.0.1:9999/"})
    assert config.vision_endpoint == "http://127.0.0.1:9999"
