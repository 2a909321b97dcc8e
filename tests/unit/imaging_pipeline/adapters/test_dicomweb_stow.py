"""The STOW-RS request body: one application/dicom part, exact length, repeatable for retries."""

from __future__ import annotations

import requests
from imaging_pipeline.adapters.dicomweb_stow import MultipartBody


def test_body_is_one_dicom_part_and_can_be_sent_twice() -> None:
    payload = bytes(range(256)) * 9000  # > 2 chunks
    body = MultipartBody(payload)
    expected = (
        f"--{body.boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + payload
        + f"\r\n--{body.boundary}--\r\n".encode()
    )

    assert b"".join(body) == expected
    assert b"".join(body) == expected  # a retry iterates again from the start
    assert len(body) == len(expected)
    assert body.content_type == (
        f'multipart/related; type="application/dicom"; boundary={body.boundary}'
    )


def test_requests_sends_it_with_a_content_length_not_chunked() -> None:
    body = MultipartBody(b"\0" * 5000)
    prepared = requests.Request(
        "POST", "http://127.0.0.1/studies", data=body, headers={"Content-Type": body.content_type}
    ).prepare()
    assert prepared.headers["Content-Length"] == str(len(body))
    assert "Transfer-Encoding" not in prepared.headers
