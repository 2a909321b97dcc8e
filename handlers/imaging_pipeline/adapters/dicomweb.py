"""Retrieve one instance over DICOMweb (WADO-RS).

In Google Cloud the base URL is the DICOM store's `.../dicomWeb` endpoint and the session
carries the function's default credentials; locally it is any DICOMweb server (Orthanc)
reached without authentication. The processor retrieves with `WadoReader`, the request
dicomweb-client sends on a `LeanSession` (a warm event's CPU, see `lean_http`); the review app,
which also reads metadata, uses dicomweb-client itself (`make_client`).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from io import BytesIO
from typing import TYPE_CHECKING

from imaging_pipeline.adapters.http import (
    PerThreadSession,
    environment_read_once,
    raise_for_status,
    request_with_retries,
    uses_google_auth,
)
from imaging_pipeline.errors import PermanentError, TransientError, classify_http_status

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from imaging_pipeline.events import InstanceEvent
    from imaging_pipeline.ports import DicomwebReader, MediaTypes

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
# The Accept header dicomweb-client builds from MEDIA_TYPES for a Retrieve Instance.
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
ATTEMPTS = 3
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")


class WadoReader:
    """WADO-RS Retrieve Instance (`DicomwebReader`): dicomweb-client's request and parsing of
    the one-part multipart/related answer, on this thread's `LeanSession`, with the REST
    adapters' retry policy (timeouts, connection errors, 408, 429, 5xx)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._sessions = PerThreadSession(self.base_url)

    def retrieve_instance(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: MediaTypes | None = None,
    ) -> Dataset:
        from pydicom import dcmread

        if media_types not in (None, MEDIA_TYPES):
            raise ValueError(f"media types {media_types} are not supported, only {MEDIA_TYPES}")
        uids = (study_instance_uid, series_instance_uid, sop_instance_uid)
        if not all(_UID.fullmatch(uid) and len(uid) <= 64 for uid in uids):
            raise ValueError("not a DICOM UID")  # as dicomweb-client: nothing else in the URL
        response = request_with_retries(
            self._sessions.get(),
            "GET",
            f"{self.base_url}/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}",
            dependency="dicomweb",
            max_attempts=ATTEMPTS,
            timeout_s=TIMEOUT_S,
            headers={"Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
        )
        raise_for_status(response, "dicomweb")
        part = single_part(response.headers.get("Content-Type", ""), response.content)
        return dcmread(BytesIO(part))


def single_part(content_type: str, body: bytes) -> bytes:
    """The one body part of a Retrieve Instance answer; ValueError when there is not exactly
    one. As dicomweb-client: a non-encapsulated `application/dicom` body (some servers send
    one) and a multipart without a boundary parameter are the part itself."""
    media_type, *parameters = (p.strip() for p in content_type.split(";"))
    if media_type.lower() == "application/dicom":
        return body
    if media_type.lower() != "multipart/related":
        raise ValueError(f"unexpected media type {media_type!r}")
    boundary = next(
        (
            value.strip().strip('"')
            for name, _, value in (p.partition("=") for p in parameters)
            if name.strip().lower() == "boundary"
        ),
        None,
    )
    if not boundary:
        return body
    marker = b"--" + boundary.encode()
    start = body.find(marker)
    headers_end = body.find(b"\r\n\r\n", start) if start >= 0 else -1
    end = body.find(b"\r\n" + marker, headers_end + 4) if headers_end >= 0 else -1
    if end < 0:
        raise ValueError("multipart/related body without a complete part")
    if not body.startswith(b"--", end + 2 + len(marker)):
        raise ValueError("more than one instance in a Retrieve Instance answer")
    return body[headers_end + 4 : end]


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
    """The pydicom Dataset of the event's instance; failures classified for Pub/Sub (those of
    dicomweb-client, if `client` is one, too)."""
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
