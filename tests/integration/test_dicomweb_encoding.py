"""WADO-RS retrieval asks for the identity transfer encoding: instances are mostly pixel data
that gzip barely shrinks, and inflating it costs the function more CPU than the bytes saved.
And the processor's own reader (`WadoReader`) reads what dicomweb-client reads."""

from __future__ import annotations

from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from imaging_pipeline.adapters.dicomweb import WadoReader, make_client, retrieve_instance
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.events import InstanceEvent, parse_event

from imaging_dev.servers.orthanc import OrthancServer
from tests.support.process import (
    instance_path,
    projection,
    pubsub_message,
    push_envelope,
    upload,
)
from tests.support.render_fixtures import bundled

pytestmark = pytest.mark.integration

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _event(ds: Any) -> InstanceEvent:
    return parse_event(push_envelope(pubsub_message(instance_path(ds))))


def test_orthanc_would_gzip_but_our_clients_get_identity(
    orthanc: OrthancServer, monkeypatch: pytest.MonkeyPatch
) -> None:
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

    # The processor's reader, seen on the wire (http.client, below its session).
    import http.client

    sent: list[dict[str, str]] = []
    connection = http.client.HTTPConnection
    request, getresponse = connection.request, connection.getresponse

    def recorded(self: http.client.HTTPConnection, *args: Any, **kwargs: Any) -> None:
        sent.append(dict(kwargs["headers"]))
        request(self, *args, **kwargs)

    def answered(self: http.client.HTTPConnection) -> http.client.HTTPResponse:
        response = getresponse(self)
        sent[-1]["answer Content-Encoding"] = response.getheader("Content-Encoding", "")
        return response

    monkeypatch.setattr(connection, "request", recorded)
    monkeypatch.setattr(connection, "getresponse", answered)
    retrieved = retrieve_instance(WadoReader(orthanc.dicomweb_url), _event(ds))
    assert retrieved.pixel_array.shape == (1024, 1024)
    (headers,) = sent
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Accept"] == ACCEPT
    assert headers["answer Content-Encoding"] == ""


# Transfer syntaxes the processor meets: explicit and implicit little endian, big endian,
# deflated, JPEG baseline and extended, JPEG 2000, RLE; a multi-frame; odd dimensions.
FILES = (
    "CT_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "image_dfl.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPGExtended.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_RLE.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_small_odd.dcm",
)


def test_the_processors_reader_reads_what_dicomweb_client_reads(orthanc: OrthancServer) -> None:
    theirs = DICOMwebClient(url=orthanc.dicomweb_url)
    ours = WadoReader(orthanc.dicomweb_url)
    for name in FILES:
        ds = pydicom.dcmread(bundled(name))
        upload(orthanc.url, ds)
        uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        expected = theirs.retrieve_instance(*uids, media_types=(("application/dicom", "*"),))
        got = ours.retrieve_instance(*uids)
        assert got == expected, name
        assert got.file_meta == expected.file_meta, name
        assert got.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID, name


def test_an_instance_the_store_does_not_have_is_a_permanent_not_found(
    orthanc: OrthancServer,
) -> None:
    ds = projection("DX", size=64, seed=4)  # never uploaded
    with pytest.raises(PermanentError) as raised:
        retrieve_instance(WadoReader(orthanc.dicomweb_url), _event(ds))
    assert raised.value.reason == "not_found"
