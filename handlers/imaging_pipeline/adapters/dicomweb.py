"""Retrieve one instance over DICOMweb (WADO-RS) with dicomweb-client.

In Google Cloud the base URL is the DICOM store's `.../dicomWeb` endpoint and the session
carries the function's default credentials (`dicomweb_client.ext.gcp`); locally it is any
DICOMweb server (Orthanc) reached without authentication.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from imaging_pipeline.adapters.http import environment_read_once, uses_google_auth
from imaging_pipeline.errors import PermanentError, TransientError, classify_http_status

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from imaging_pipeline.events import InstanceEvent
    from imaging_pipeline.ports import DicomwebReader

# Ask for the stored transfer syntax: no transcoding on the server (the rendering core decodes
# JPEG, JPEG 2000 and RLE itself), and nothing is lost to a lossy re-encode.
MEDIA_TYPES = (("application/dicom", "*"),)
TIMEOUT_S = 60.0
# Transfer encoding of WADO-RS responses. Instances are mostly pixel data that gzip barely
# shrinks, and on a fast network inflating it costs more than the bytes saved: Orthanc gzips
# when asked (requests asks by default); for a 1024x1024 DX, `identity` cut client CPU from
# 15.5 to 4.8 ms and wall from 150 to 9.8 ms. Google's APIs compress a response only when the
# request has `Accept-Encoding: gzip` *and* a User-Agent containing "gzip" (Google API
# performance tips), which dicomweb-client's does not: the DICOM store already answers
# uncompressed, and saying `identity` makes it explicit for every server.
ACCEPT_ENCODING = "identity"


def make_client(base_url: str) -> DicomwebReader:
    from dicomweb_client.api import DICOMwebClient

    if uses_google_auth(base_url):
        from dicomweb_client.ext.gcp.session_utils import create_session_from_gcp_credentials

        session = create_session_from_gcp_credentials()
    else:
        import requests

        session = requests.Session()
    environment_read_once(session, base_url)
    session.headers["Accept-Encoding"] = ACCEPT_ENCODING
    client = DICOMwebClient(url=base_url, session=session, timeout=TIMEOUT_S)
    # A few quick retries here; Pub/Sub's backoff handles longer outages.
    client.set_http_retry_params(
        retry=True,
        max_attempts=3,
        wait_exponential_multiplier=200,
        retriable_error_codes=tuple(HTTPStatus(s) for s in (408, 429, 500, 502, 503, 504)),
    )
    return client


def retrieve_instance(client: DicomwebReader, event: InstanceEvent) -> Dataset:
    """The pydicom Dataset of the event's instance; failures classified for Pub/Sub."""
    import requests
    from pydicom.errors import InvalidDicomError
    from retrying import RetryError  # type: ignore[import-untyped]

    try:
        return client.retrieve_instance(
            event.study_uid, event.series_uid, event.instance_uid, media_types=MEDIA_TYPES
        )
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 502
        raise classify_http_status("dicomweb", status) from None
    except RetryError as exc:
        status = getattr(exc.last_attempt.value, "status_code", "?")
        raise TransientError("dicomweb", f"HTTP {status} after retries") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientError("dicomweb", type(exc).__name__) from None
    except (InvalidDicomError, ValueError, EOFError) as exc:
        raise PermanentError("invalid_dicom", type(exc).__name__) from None
