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


class StoreUnreachableError(Exception):
    """The store cannot be used at all: no answer, or it refuses every request."""


def probe_store(session: requests.Session, dicomweb_url: str, timeout_s: float = 15.0) -> None:
    """One QIDO-RS query before a bulk run, so a wrong URL or a store that is down costs one
    line instead of one error per file."""
    url = f"{dicomweb_url.rstrip('/')}/studies"
    response = None
    for _ in range(2):  # one retry: a dropped connection is not yet an unreachable store
        try:
            response = session.get(
                url,
                params={"limit": "1"},
                timeout=timeout_s,
                headers={"Accept": "application/dicom+json"},
            )
            break
        except requests.RequestException as error:
            problem = type(error).__name__
    if response is None:
        raise StoreUnreachableError(f"cannot reach the store at {dicomweb_url} ({problem})")
    if response.status_code in (401, 403):
        raise StoreUnreachableError(
            f"the store at {dicomweb_url} refused access (HTTP {response.status_code}): check "
            "that your identity may read and write it (roles/healthcare.dicomEditor)"
        )
    if response.status_code == 404:
        raise StoreUnreachableError(f"no DICOMweb store at {dicomweb_url} (HTTP 404)")
    # A 5xx is left to the per-file retries: a store that keeps failing stops the run there.
