"""Parsing Part 10 input and decoding exactly one frame.

Only the frame being rendered is decoded (`index=`), so the decoded memory is one frame
whatever the number of frames. The encoded bytes are read in full: pydicom's by-index
stream reader would avoid that but fails on deflated datasets and on some real files
(e.g. pydicom's SC_rgb_jpeg.dcm), which render correctly from a parsed dataset.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import as_pixel_options

from imaging_pipeline.render.errors import RejectReason, RenderRejected
from imaging_pipeline.render.header import PIXEL_KEYWORDS, Header


def read_dataset(source: bytes | Path) -> Dataset:
    """Parse Part 10 bytes or a file. Input without preamble or file meta is accepted only
    if it parses to something DICOM-like (a SOP class or pixel data), else NOT_DICOM."""
    with io.BytesIO(source) if isinstance(source, bytes) else source.open("rb") as stream:
        try:
            ds = dcmread(stream)
        except InvalidDicomError:
            ds = None
        except Exception:  # pydicom raises many types on garbage: all mean "not DICOM"
            raise RenderRejected(RejectReason.NOT_DICOM, "not a DICOM Part 10 stream") from None
        if ds is not None:
            if len(ds) == 0:  # a "DICM" marker followed by nothing parsable
                raise RenderRejected(RejectReason.NOT_DICOM, "no data elements after the preamble")
            return ds
        stream.seek(0)
        try:
            ds = dcmread(stream, force=True)
        except Exception:
            ds = None
    if ds is None or not ("SOPClassUID" in ds or any(k in ds for k in PIXEL_KEYWORDS)):
        raise RenderRejected(RejectReason.NOT_DICOM, "not a DICOM Part 10 stream")
    return ds


def decode_frame(ds: Dataset, header: Header, index: int) -> np.ndarray:
    """Decode one frame (YBR converted to RGB by the decoder); CORRUPT_PIXEL_DATA on failure."""
    try:
        decoder = get_decoder(header.transfer_syntax)
        # The transfer syntax is passed explicitly: it may be inferred (no file meta).
        options = as_pixel_options(ds, transfer_syntax_uid=header.transfer_syntax)
        frame, _ = decoder.as_array(ds, index=index, validate=True, **options)
    except Exception as error:  # decoders fail in many ways; the type is enough to diagnose
        raise RenderRejected(
            RejectReason.CORRUPT_PIXEL_DATA,
            f"frame {index} of {header.frames} failed to decode ({type(error).__name__}, "
            f"transfer syntax {header.transfer_syntax})",
        ) from None
    expected = (header.rows, header.columns) + ((3,) if header.samples == 3 else ())
    if frame.shape != expected:
        raise RenderRejected(
            RejectReason.CORRUPT_PIXEL_DATA,
            f"decoded frame shape {frame.shape} does not match {expected}",
        )
    return frame
