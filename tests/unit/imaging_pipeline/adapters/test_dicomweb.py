"""`single_part` takes the instance out of a Retrieve Instance answer as dicomweb-client does,
and refuses answers that do not hold exactly one."""

from __future__ import annotations

import pytest
from dicomweb_client.api import DICOMwebClient
from imaging_pipeline.adapters.dicomweb import WadoReader, single_part

PART = b"\x00" * 128 + b"DICM" + bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"


def _multipart(boundary: str, parts: list[bytes], preamble: bytes = b"") -> bytes:
    body = preamble
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


class _Response:
    def __init__(self, content_type: str, content: bytes) -> None:
        self.headers = {"content-type": content_type}
        self.content = content

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *args: object) -> None:
        pass


def _dicomweb_clients_part(content_type: str, body: bytes) -> list[bytes]:
    client = DICOMwebClient(url="http://unused.example.test")
    return list(client._decode_multipart_message(_Response(content_type, body), stream=False))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"; boundary=b0undary',
        'Multipart/Related; boundary="b0undary"; type="application/dicom"',
        "multipart/related;type=application/dicom;boundary=b0undary",
    ],
)
@pytest.mark.parametrize("preamble", [b"", b"ignored preamble\r\n"])
def test_the_part_is_the_one_dicomweb_client_extracts(content_type: str, preamble: bytes) -> None:
    body = _multipart("b0undary", [PART], preamble)
    assert single_part(content_type, body) == PART
    if not preamble:  # dicomweb-client fails on a preamble (RFC 2046 allows one; none seen)
        assert _dicomweb_clients_part(content_type, body) == [PART]


def test_a_body_sent_without_encapsulation_is_the_part() -> None:
    assert single_part("application/dicom", PART) == PART
    assert single_part("multipart/related; type=application/dicom", PART) == PART


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"[]"),
        ("multipart/related; boundary=b0undary", _multipart("b0undary", [PART, PART])),
        ("multipart/related; boundary=b0undary", _multipart("b0undary", [PART])[:-14]),
        ("multipart/related; boundary=other", _multipart("b0undary", [PART])),
        ("multipart/related; boundary=b0undary", b""),
    ],
    ids=["not-dicom", "two-parts", "cut-short", "wrong-boundary", "empty"],
)
def test_anything_but_one_part_is_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(ValueError):
        single_part(content_type, body)


@pytest.mark.parametrize(
    "uids",
    [
        ("1.2.3", "1.2.4", "1.2.5/../../studies"),
        ("1.2.3", "1.2.4", "1.2.5?x=1"),
        ("1.2.3", "", "1.2.5"),
        ("1.2.3", "1.2.4", "1." + "2" * 63),
    ],
)
def test_only_dicom_uids_reach_the_url(uids: tuple[str, str, str]) -> None:
    with pytest.raises(ValueError, match="not a DICOM UID"):
        WadoReader("http://unused.example.test").retrieve_instance(*uids)
