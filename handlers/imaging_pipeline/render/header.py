"""Checks on the header, in the order a rejection should be reported, before any decoding."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from imaging_pipeline.render.colour import DECODED_AS_RGB, PALETTE
from imaging_pipeline.render.errors import RejectReason, RenderRejected
from imaging_pipeline.render.numbers import value
from imaging_pipeline.render.sop_classes import is_image_sop_class

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
GREYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
_SAMPLES = {"MONOCHROME1": 1, "MONOCHROME2": 1, PALETTE: 1} | {p: 3 for p in DECODED_AS_RGB}

# Beyond any projection radiograph or mammogram (~25 MP). With the encoded pixel data, the
# decoded frame and its 8-bit copies, one frame at these limits stays inside the function's
# 512 MiB (the 3000x3000 16-bit radiograph of bench/render.py peaks near 110 MiB).
MAX_FRAME_SAMPLES = 40_000_000
MAX_FRAME_BYTES = 128 * 2**20
MAX_SIDE = 32_768
MAX_FRAMES = 100_000


@dataclass(frozen=True)
class Header:
    rows: int
    columns: int
    frames: int
    samples: int
    photometric: str
    transfer_syntax: UID
    transfer_syntax_inferred: bool  # no file meta: guessed from how the dataset was encoded
    little_endian: bool
    # How samples are stored (None when missing or not an integer: the decoder judges).
    bits_allocated: int
    bits_stored: int | None = None
    pixel_representation: int | None = None
    planar_configuration: int | None = None

    @property
    def greyscale(self) -> bool:
        return self.photometric in GREYSCALE


def _reject(reason: RejectReason, detail: str) -> RenderRejected:
    return RenderRejected(reason, detail)


def _transfer_syntax(ds: Dataset) -> tuple[UID, bool]:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(str(uid).strip()), False
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None or little is None:
        raise _reject(RejectReason.UNSUPPORTED_TRANSFER_SYNTAX, "no transfer syntax")
    if implicit:
        return ImplicitVRLittleEndian, True
    return (ExplicitVRLittleEndian if little else ExplicitVRBigEndian), True


def _required_int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    try:
        return int(value(ds, keyword, default))
    except (TypeError, ValueError):
        raise _reject(
            RejectReason.CORRUPT_PIXEL_DATA, f"{keyword} missing or not an integer"
        ) from None


def _optional_int(ds: Dataset, keyword: str) -> int | None:
    try:
        return int(value(ds, keyword))
    except (TypeError, ValueError):
        return None


def check_header(ds: Dataset) -> Header:
    """Raise RenderRejected for anything that should not reach the decoder."""
    sop_class = str(value(ds, "SOPClassUID", "") or "")
    if sop_class and not is_image_sop_class(sop_class):
        raise _reject(RejectReason.NON_IMAGE_SOP_CLASS, f"SOP class {sop_class} carries no image")
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        raise _reject(RejectReason.NO_PIXEL_DATA, "no Pixel Data element")

    transfer_syntax, inferred = _transfer_syntax(ds)
    try:
        available = get_decoder(transfer_syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise _reject(
            RejectReason.UNSUPPORTED_TRANSFER_SYNTAX,
            f"no decoder for transfer syntax {transfer_syntax}",
        )

    rows, columns = _required_int(ds, "Rows"), _required_int(ds, "Columns")
    samples = _required_int(ds, "SamplesPerPixel", 1)
    bits_allocated = _required_int(ds, "BitsAllocated")
    frames = _required_int(ds, "NumberOfFrames", 1) if value(ds, "NumberOfFrames") else 1
    if not (0 < rows <= MAX_SIDE and 0 < columns <= MAX_SIDE and 0 < frames <= MAX_FRAMES):
        raise _reject(RejectReason.ABSURD_DIMENSIONS, f"{rows}x{columns} pixels, {frames} frames")
    frame_samples = rows * columns * samples
    frame_bytes = frame_samples * max(1, bits_allocated // 8)
    if frame_samples > MAX_FRAME_SAMPLES or frame_bytes > MAX_FRAME_BYTES:
        raise _reject(
            RejectReason.ABSURD_DIMENSIONS,
            f"{rows}x{columns}x{samples} samples of {bits_allocated} bits per frame exceeds "
            f"{MAX_FRAME_SAMPLES} samples or {MAX_FRAME_BYTES // 2**20} MiB",
        )

    photometric = str(value(ds, "PhotometricInterpretation", "") or "").strip().upper()
    if photometric not in _SAMPLES:
        raise _reject(
            RejectReason.UNSUPPORTED_PHOTOMETRIC,
            f"photometric interpretation {photometric or '(missing)'}",
        )
    if _SAMPLES[photometric] != samples:
        raise _reject(
            RejectReason.UNSUPPORTED_PHOTOMETRIC, f"{photometric} with {samples} samples per pixel"
        )
    return Header(
        rows=rows,
        columns=columns,
        frames=frames,
        samples=samples,
        photometric=photometric,
        transfer_syntax=transfer_syntax,
        transfer_syntax_inferred=inferred,
        little_endian=transfer_syntax != ExplicitVRBigEndian,
        bits_allocated=bits_allocated,
        bits_stored=_optional_int(ds, "BitsStored"),
        pixel_representation=_optional_int(ds, "PixelRepresentation"),
        planar_configuration=_optional_int(ds, "PlanarConfiguration") if samples > 1 else None,
    )


def choose_frame(header: Header, requested: int | None) -> int:
    """The requested frame, or the middle one; a frame past the end is the caller's error."""
    if requested is None:
        return header.frames // 2
    if requested >= header.frames:
        raise ValueError(
            f"frame {requested} requested; the instance has frames 0..{header.frames - 1}"
        )
    return requested
