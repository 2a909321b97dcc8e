"""Names of the resources other tools must find without reading Terraform state (the smoke test,
operators): derived from the environment file exactly as the stack derives them."""

from __future__ import annotations

from stacks.config import Environment

HEALTHCARE_API = "https://healthcare.googleapis.com/v1"


def dataset_name(env: Environment) -> str:
    return f"{env.config.name_prefix}-{env.name}"


def dataset_path(env: Environment) -> str:
    cfg = env.config
    return f"projects/{cfg.project_id}/locations/{cfg.region}/datasets/{dataset_name(env)}"


def dicom_store_path(env: Environment) -> str:
    return f"{dataset_path(env)}/dicomStores/{dataset_name(env)}-dicom"


def fhir_store_path(env: Environment) -> str:
    return f"{dataset_path(env)}/fhirStores/{dataset_name(env)}-fhir"


def dicomweb_url(env: Environment) -> str:
    return f"{HEALTHCARE_API}/{dicom_store_path(env)}/dicomWeb"


def fhir_base_url(env: Environment) -> str:
    return f"{HEALTHCARE_API}/{fhir_store_path(env)}/fhir"
