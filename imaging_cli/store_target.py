"""The DICOM store an operator command talks to: a DICOMweb URL or a Google DICOM store path.

`projects/P/locations/L/datasets/D/dicomStores/S` becomes the Cloud Healthcare API's DICOMweb
URL, reached with Application Default Credentials; any http(s):// URL (Orthanc, another PACS)
is used as is, without credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from imaging_pipeline.adapters.http import session_for
from imaging_pipeline.events import STORE_PATH


@dataclass(frozen=True)
class StoreTarget:
    dicomweb_url: str
    store_path: str | None  # the Google resource name, when the store was given as one

    def session(self) -> requests.Session:
        return session_for(self.dicomweb_url)


def healthcare_dicomweb_url(store_path: str) -> str:
    from dicomweb_client.ext.gcp.uri import GoogleCloudHealthcareURL

    parts = store_path.split("/")
    return str(
        GoogleCloudHealthcareURL(
            project_id=parts[1], location=parts[3], dataset_id=parts[5], dicom_store_id=parts[7]
        )
    )


def resolve_store(spec: str) -> StoreTarget:
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        return StoreTarget(spec.rstrip("/"), None)
    if STORE_PATH.fullmatch(spec):
        return StoreTarget(healthcare_dicomweb_url(spec), spec)
    raise ValueError(
        f"not a DICOMweb URL or a DICOM store path "
        f"(projects/P/locations/L/datasets/D/dicomStores/S): {spec!r}"
    )
