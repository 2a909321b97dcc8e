"""WADO-RS retrieval asks for the identity transfer encoding: instances are mostly pixel data
that gzip barely shrinks, and inflating it costs the function more CPU than the bytes saved."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from imaging_pipeline.adapters.dicomweb import make_client, retrieve_instance
from imaging_pipeline.events import InstanceEvent, parse_event

from imaging_dev.servers.orthanc import OrthancServer
from tests.support.process import (
    instance_path,
    projection,
    pubsub_message,
    push_envelope,
    upload,
)

pytestmark = pytest.mark.integration

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _event(ds: Any) -> InstanceEvent:
    return parse_event(push_envelope(pubsub_message(instance_path(ds))))


def test_orthanc_would_gzip_but_our_client_gets_identity(orthanc: OrthancServer) -> None:
    ds = projection("DX", size=1024, seed=3)
    upload(orthanc.url, ds)
    url = (
        f"{orthanc.dicomweb_url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    # What the server does for a default client (requests asks for gzip): it compresses.
    default = requests.get(url, headers={"Accept": ACCEPT}, timeout=30)
    assert default.status_code == 200
    assert default.headers.get("Content-Encoding") == "gzip"

    client = make_client(orthanc.dicomweb_url)
    session = client._session  # type: ignore[attr-defined]  # DICOMwebClient's own session
    ours = session.get(url, headers={"Accept": ACCEPT}, timeout=30)
    assert ours.status_code == 200
    assert "Content-Encoding" not in ours.headers
    assert len(ours.content) > 2 * 1024 * 1024  # 1024 x 1024 x 16 bit, as stored

    retrieved = retrieve_instance(client, _event(ds))
    assert retrieved.SOPInstanceUID == ds.SOPInstanceUID
    assert retrieved.pixel_array.shape == (1024, 1024)
