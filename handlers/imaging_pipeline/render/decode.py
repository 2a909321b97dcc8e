"""Parsing Part 10 input and decoding exactly one frame.

Only the frame being rendered is decoded. For bytes and files, pixel data larger than
DEFER_SIZE is not even read with the header: the frame's own bytes (native) or fragments
(encapsulated, via the offset tables when present) are read from the source, so a long
multi-frame series costs one frame of memory. Anything unusual about that lazy path (deflated
datasets, bit-packed or float pixel data, odd encapsulation) falls back to decoding from the
fully read dataset, which pydicom handles for every case it supports.

8-bit JPEG Baseline is decoded by libjpeg-turbo (`jpeg_baseline`): dcmtk's samples to the
bit, about three times faster than pydicom's default plugin.

Native frames in the common layouts (8/16/32-bit words, greyscale, palette or RGB) are read
straight into an array, with the bits above Bits Stored treated as pydicom's decoder treats
them, without the decoder's per-call set-up (about 0.06 ms, nearly all of a small native
frame's decode).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    JPEGLSNearLossless,
)

from imaging_pipeline.logs import messages_on_this_thread
from imaging_pipeline.render import jpeg_baseline
from imaging_pipeline.render.errors import RejectReason, RenderRejected
from imaging_pipeline.render.header import PIXEL_KEYWORDS, Header

# Values above this size stay in the source until needed: pixel data of anything larger than
# a CT slice, never LUTs (at most 128 KiB).
DEFER_SIZE = 1 << 20
Opener = Callable[[], BinaryIO]
_PIXEL_MODULE = (
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)


def opener(source: bytes | Path) -> Opener:
    """A way to (re)open the source for the header and, later, one frame's bytes."""
    if isinstance(source, bytes):
        return lambda: io.BytesIO(source)
    return lambda: source.open("rb")


def _truncation(ds: Dataset, size: int, ended_early: bool) -> str | None:
    """Why a parsed dataset looks cut off, or None. pydicom only warns when a sequence or
    encapsulated pixel data runs past the end, and silently drops an element cut off there
    (then the last element parsed ends before the data does)."""
    if ended_early and (len(ds) or "TransferSyntaxUID" in getattr(ds, "file_meta", ())):
        return "the data ends inside an element"  # a real header, cut off
    if len(ds) == 0:
        return None  # nothing parsed: not DICOM rather than truncated
    pixels = ds.get_item("PixelData", keep_deferred=True)
    if pixels is None:
        if not _is_image(ds) or any(k in ds for k in PIXEL_KEYWORDS):
            return None
        last = ds.get_item(max(ds.keys()), keep_deferred=True)
        tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
        if tell is not None and length not in (None, 0xFFFFFFFF) and tell + length < size:
            return "an image whose pixel data is cut off"
        return None
    # Pixel data cut off: frames before the cut still render, so decode_frame judges it.
    return None


def _pixel_data_cut_off(ds: Dataset, header: Header, open_source: Opener | None) -> bool:
    """Whether the pixel data holds fewer bytes than declared: the source was cut off."""
    pixels = ds.get_item("PixelData", keep_deferred=True)
    tell, length = getattr(pixels, "value_tell", None), getattr(pixels, "length", None)
    value = getattr(pixels, "value", None)
    if isinstance(pixels, RawDataElement) and length not in (None, 0xFFFFFFFF):
        if isinstance(value, bytes | bytearray):
            return len(value) < length  # read with the header, shorter than its length
        if open_source is not None and tell is not None and "BitsAllocated" in ds:
            with open_source() as stream:
                return bool(tell + length > stream.seek(0, io.SEEK_END))
    if header.transfer_syntax.is_encapsulated or not isinstance(value, bytes | bytearray):
        return False
    bits = int(ds.get("BitsAllocated", 0) or 0)
    expected = header.rows * header.columns * header.samples * bits * header.frames // 8
    return len(value) < expected


def _is_image(ds: Dataset) -> bool:
    """Image storage SOP classes (and anything with Rows/Columns) carry pixel data."""
    if "Rows" in ds and "Columns" in ds:
        return True
    try:
        return "Image Storage" in UID(str(ds.get("SOPClassUID", ""))).name
    except Exception:  # a malformed UID is judged elsewhere
        return False


def read_dataset(open_source: Opener) -> Dataset:
    """Parse the header (large values deferred). Input without preamble or file meta is
    accepted only if it parses to something DICOM-like (a SOP class or pixel data); a file
    that ends before the data it declares is rejected as truncated, not as "not DICOM"."""
    with open_source() as stream, messages_on_this_thread("pydicom") as logged:
        try:
            ds = dcmread(stream, defer_size=DEFER_SIZE)
        except InvalidDicomError:
            ds = None
        except Exception:  # pydicom raises many types on garbage: all mean "not DICOM"
            raise RenderRejected(RejectReason.NOT_DICOM, "not a DICOM Part 10 stream") from None
        if ds is not None:
            size = stream.seek(0, io.SEEK_END)
            ended_early = any("End of file reached" in message for message in logged)
            problem = _truncation(ds, size, ended_early)
            if problem:
                raise RenderRejected(RejectReason.TRUNCATED, f"truncated file: {problem}")
            if len(ds) == 0:  # a "DICM" marker followed by nothing parsable
                raise RenderRejected(RejectReason.NOT_DICOM, "no data elements after the preamble")
            return ds
        stream.seek(0)
        try:
            ds = dcmread(stream, defer_size=DEFER_SIZE, force=True)
        except Exception:
            ds = None
    if ds is None or not ("SOPClassUID" in ds or any(k in ds for k in PIXEL_KEYWORDS)):
        raise RenderRejected(RejectReason.NOT_DICOM, "not a DICOM Part 10 stream")
    return ds


def _deferred_pixel_data(ds: Dataset, header: Header) -> RawDataElement | None:
    """The Pixel Data element if it was left in the source and the lazy path applies."""
    if "PixelData" not in ds or header.transfer_syntax == DeflatedExplicitVRLittleEndian:
        return None
    raw = ds.get_item("PixelData", keep_deferred=True)
    if not isinstance(raw, RawDataElement) or raw.value is not None:
        return None
    return raw


def _one_frame(
    ds: Dataset, header: Header, index: int, raw: RawDataElement, open_source: Opener
) -> Dataset | bytes | None:
    """Frame `index` alone: its fragments encapsulated as a one-frame Pixel Data value, or a
    dataset holding only the pixel module and the frame's native bytes; None when the lazy
    path does not apply (bit-packed native data)."""
    syntax = header.transfer_syntax
    with open_source() as stream:
        stream.seek(raw.value_tell)
        if syntax.is_encapsulated:
            offsets = None
            if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
                offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
            fragment = get_frame(
                stream, index, extended_offsets=offsets, number_of_frames=header.frames
            )
            return encapsulate([fragment])
        bits = int(ds.BitsAllocated)
        if bits % 8:
            return None  # bit-packed frames need not start on a byte boundary
        size = header.rows * header.columns * header.samples * bits // 8
        stream.seek(raw.value_tell + index * size)
        pixel_data, vr = stream.read(size), "OB" if bits == 8 else "OW"
    one = Dataset()
    one.file_meta = FileMetaDataset()
    one.file_meta.TransferSyntaxUID = syntax
    for keyword in _PIXEL_MODULE:
        if keyword in ds:
            one[keyword] = ds[keyword]
    one.NumberOfFrames = 1
    one.PixelData = pixel_data
    one["PixelData"].VR = vr
    return one


def _with_pixels_loaded(ds: Dataset, open_source: Opener | None) -> Dataset:
    """`ds`, or the source read in full if its pixel data was deferred (a deferred value
    cannot be read back from a closed in-memory stream)."""
    deferred = any(
        isinstance(raw := ds.get_item(keyword, keep_deferred=True), RawDataElement)
        and raw.value is None
        for keyword in PIXEL_KEYWORDS
        if keyword in ds
    )
    if open_source is None or not deferred:
        return ds
    with open_source() as stream:
        return dcmread(stream, force=True)


# Native pixel data read straight into an array (no decoder): little and big endian words of
# 8, 16 or 32 bits, for the colour spaces that need no conversion. Anything else (bit-packed,
# float, YBR, 8-bit big endian with its OW byte swapping) goes to pydicom's decoder.
_NATIVE_SYNTAXES = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
    }
)
_NATIVE_PHOTOMETRIC = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB"})


def _native_dtype(header: Header) -> np.dtype | None:
    """The stored samples' dtype when the direct native read applies, else None."""
    bits, stored = header.bits_allocated, header.bits_stored
    if (
        header.transfer_syntax not in _NATIVE_SYNTAXES
        or header.photometric not in _NATIVE_PHOTOMETRIC
        or bits not in (8, 16, 32)
        or stored is None
        or not 1 <= stored <= bits
        or header.pixel_representation not in (0, 1)
        or (header.samples == 3 and header.planar_configuration not in (0, 1))
        or (bits == 8 and not header.little_endian)
    ):
        return None
    kind = "i" if header.pixel_representation else "u"
    return np.dtype(f"{'<' if header.little_endian else '>'}{kind}{bits // 8}")


def _native_frame(
    ds: Dataset, header: Header, index: int, open_source: Opener | None
) -> np.ndarray | None:
    """Frame `index` of native pixel data as pydicom's decoder returns it (unused high bits
    cleared, or sign-extended for signed data), read without the decoder's per-call set-up;
    None when this path does not apply or the data is short (the decoder then judges)."""
    dtype = _native_dtype(header)
    if dtype is None or "PixelData" not in ds:
        return None
    element = ds.get_item("PixelData", keep_deferred=True)
    value = getattr(element, "value", None)
    samples = header.rows * header.columns * header.samples
    size = samples * dtype.itemsize
    if isinstance(value, bytes | bytearray):
        if len(value) < size * header.frames:
            return None  # the decoder rejects short data, even when this frame is complete
        frame = np.frombuffer(value, dtype=dtype, count=samples, offset=index * size)
        if header.frames > 1:
            frame = frame.copy()  # do not keep every frame alive through a view of one
    elif (
        value is None
        and isinstance(element, RawDataElement)
        and element.value_tell is not None
        and open_source is not None
        and header.transfer_syntax != DeflatedExplicitVRLittleEndian
    ):
        with open_source() as stream:
            stream.seek(element.value_tell + index * size)
            data = stream.read(size)
        if len(data) < size:
            return None
        frame = np.frombuffer(data, dtype=dtype)
    else:
        return None
    if header.samples == 3:
        if header.planar_configuration == 1:
            planes = frame.reshape(3, header.rows, header.columns)
            frame = np.ascontiguousarray(planes.transpose(1, 2, 0))
        else:
            frame = frame.reshape(header.rows, header.columns, 3)
    else:
        frame = frame.reshape(header.rows, header.columns)
    if not dtype.isnative:
        frame = frame.astype(dtype.newbyteorder("="))
    assert header.bits_stored is not None  # checked by _native_dtype
    return _clear_unused_bits(frame, header.bits_allocated, header.bits_stored)


def _clear_unused_bits(frame: np.ndarray, bits_allocated: int, bits_stored: int) -> np.ndarray:
    """What pydicom's decoder does to native data with Bits Stored < Bits Allocated (PS3.5
    8.1.1: the bits above Bits Stored are not part of the value): shift left then right, which
    clears them (unsigned) or repeats the sign bit into them (signed). Skipped when every
    value is already in range, as in almost every file, which leaves them unchanged anyway."""
    shift = bits_allocated - bits_stored
    if shift == 0 or frame.size == 0:
        return frame
    if frame.dtype.kind == "u":
        if int(frame.max()) < 1 << bits_stored:
            return frame
    else:
        limit = 1 << (bits_stored - 1)
        if -limit <= int(frame.min()) and int(frame.max()) < limit:
            return frame
    shifted = np.left_shift(frame, shift)
    np.right_shift(shifted, shift, out=shifted)
    return shifted


# Plugins tried first where pydicom's order (pylibjpeg first) has a faster one that decodes
# to the same samples: CharLS (pyjpegls) decodes JPEG-LS 2-5x faster than pylibjpeg-libjpeg.
# When it is missing or fails on the frame, pydicom's own order decides, as before. 8-bit
# JPEG Baseline does not come here: `jpeg_baseline` decodes it as dcmtk does, before this.
_PREFERRED_PLUGIN = {
    JPEGLSLossless: "pyjpegls",
    JPEGLSNearLossless: "pyjpegls",
}


def _preferred_plugin(decoder: Decoder, header: Header) -> str | None:
    plugin = _PREFERRED_PLUGIN.get(header.transfer_syntax)
    return plugin if plugin in decoder.available_plugins else None


def _pixel_options(header: Header, frames: int) -> dict[str, Any] | None:
    """The pixel module as decoder options, from the header already read (the decoder reading
    them from the dataset again converts each element: about 0.1 ms a frame); None when one
    is missing or not an integer, for the decoder to report from the dataset."""
    if header.bits_stored is None or header.pixel_representation is None:
        return None
    options: dict[str, Any] = {
        "rows": header.rows,
        "columns": header.columns,
        "samples_per_pixel": header.samples,
        "bits_allocated": header.bits_allocated,
        "bits_stored": header.bits_stored,
        "pixel_representation": header.pixel_representation,
        "photometric_interpretation": header.photometric,
        "number_of_frames": frames,
    }
    if header.samples > 1:
        if header.planar_configuration is None:
            return None
        options["planar_configuration"] = header.planar_configuration
    return options


def _encapsulated_source(ds: Dataset, header: Header) -> tuple[bytes, dict[str, Any]] | None:
    """Encapsulated Pixel Data held in memory, with its decoder options."""
    options = _pixel_options(header, header.frames)
    if not header.transfer_syntax.is_encapsulated or options is None or "PixelData" not in ds:
        return None
    data = getattr(ds.get_item("PixelData", keep_deferred=True), "value", None)
    if not isinstance(data, bytes):
        return None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        options["extended_offsets"] = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    return data, options


def _jpeg_baseline(source: Dataset | bytes, header: Header, index: int) -> np.ndarray | None:
    """8-bit JPEG Baseline through libjpeg-turbo (`jpeg_baseline`); None where it does not
    apply, for pydicom's decoders."""
    if header.transfer_syntax != JPEGBaseline8Bit or header.bits_allocated != 8:
        return None
    try:
        if isinstance(source, bytes):
            fragment = get_frame(source, 0, number_of_frames=1)
        elif (encapsulated := _encapsulated_source(source, header)) is not None:
            data, options = encapsulated
            fragment = get_frame(
                data,
                index,
                extended_offsets=options.get("extended_offsets"),
                number_of_frames=header.frames,
            )
        else:
            return None
    except Exception:  # odd encapsulation: pydicom's decoders judge it
        return None
    return jpeg_baseline.decode(fragment, header.photometric, header.rows, header.columns)


def _decode(source: Dataset | bytes, header: Header, index: int) -> np.ndarray:
    """Decode frame `index` of a dataset, or of one frame's encapsulated Pixel Data value."""
    frame = _jpeg_baseline(source, header, index)
    if frame is not None:
        return frame
    decoder = get_decoder(header.transfer_syntax)
    # The transfer syntax is passed explicitly: it may be inferred (no file meta). YBR comes
    # back as RGB (the decoder's as_rgb default).
    options: dict[str, Any] = {"transfer_syntax_uid": header.transfer_syntax}
    src: Dataset | bytes = source
    if isinstance(source, bytes):
        pixel_options = _pixel_options(header, 1)
        if pixel_options is None:
            raise ValueError("the pixel module is incomplete")
        options.update(pixel_options)
    elif (encapsulated := _encapsulated_source(source, header)) is not None:
        src, pixel_options = encapsulated
        options.update(pixel_options)
    plugin = _preferred_plugin(decoder, header)
    result = None
    if plugin is not None:
        try:
            result = decoder.as_array(
                src, index=index, validate=True, decoding_plugin=plugin, **options
            )
        except Exception:  # pydicom's own plugin order decides below
            result = None
    if result is None:
        result = decoder.as_array(src, index=index, validate=True, **options)
    return result[0]


def decode_frame(
    ds: Dataset, header: Header, index: int, open_source: Opener | None = None
) -> np.ndarray:
    """Decode one frame (YBR converted to RGB by the decoder); CORRUPT_PIXEL_DATA on failure."""
    frame = _native_frame(ds, header, index, open_source)
    raw = _deferred_pixel_data(ds, header) if open_source is not None else None
    if frame is None and raw is not None and open_source is not None:
        try:
            one = _one_frame(ds, header, index, raw, open_source)
            frame = _decode(one, header, 0) if one is not None else None
        except Exception:  # the full path below decides whether the data is corrupt
            frame = None
    try:
        if frame is None:
            frame = _decode(_with_pixels_loaded(ds, open_source), header, index)
    except Exception as error:  # decoders fail in many ways; the type is enough to diagnose
        if _pixel_data_cut_off(ds, header, open_source):
            raise RenderRejected(
                RejectReason.TRUNCATED,
                f"truncated file: frame {index} of {header.frames} lies past the end of the data",
            ) from None
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
