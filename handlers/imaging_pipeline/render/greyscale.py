"""Greyscale pipeline: stored values -> modality -> VOI -> presentation -> 8 bits.

Every step is a pointwise function of the stored value, so for 8- and 16-bit data the whole
chain is evaluated once per stored value between the frame's minimum and maximum (at most
65,536 float32 entries) and the frame is mapped with one table lookup: no float copy of the
frame, and a robust window from a histogram instead of sorting pixels. Other data (32-bit,
float) runs the same functions on the frame itself.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from imaging_pipeline.render.modality import modality_transform
from imaging_pipeline.render.numbers import first_float, value
from imaging_pipeline.render.voi import (
    Voi,
    declared_voi,
    robust_window_from_histogram,
    robust_window_from_samples,
)

# Robust windows look at about this many pixels (a regular subsample of larger frames): the
# 0.5th percentile still rests on hundreds of pixels.
WINDOW_SAMPLE_PIXELS = 1 << 16


def inverted(attrs: Dataset, photometric: str) -> bool:
    """MONOCHROME1 (minimum is white) and an INVERSE presentation LUT both display inverted."""
    shape = str(value(attrs, "PresentationLUTShape", "") or "").strip().upper()
    return photometric == "MONOCHROME1" or shape == "INVERSE"


def _display(
    stored: np.ndarray, attrs: Dataset, little_endian: bool, voi: Voi, invert: bool
) -> np.ndarray:
    """Stored values (float32) -> display intensities in [0, 1]."""
    grey = voi.apply(modality_transform(stored, attrs, little_endian))
    if invert:
        grey = np.float32(1.0) - grey
    return grey


def _to_uint8(grey: np.ndarray) -> np.ndarray:
    return np.rint(grey * np.float32(255.0)).astype(np.uint8)


def _subsample(frame: np.ndarray) -> np.ndarray:
    step = max(1, int(np.sqrt(frame.size / WINDOW_SAMPLE_PIXELS)))
    return frame[::step, ::step]


def _padding_range(attrs: Dataset) -> tuple[float, float] | None:
    """Stored values that are padding (PS3.3 C.7.5.1.1.2), excluded from robust windows."""
    if "PixelPaddingValue" not in attrs:
        return None
    value = first_float(attrs, "PixelPaddingValue", 0.0)
    limit = first_float(attrs, "PixelPaddingRangeLimit", value)
    return (min(value, limit), max(value, limit))


def render_greyscale(
    frame: np.ndarray, attrs: Dataset, photometric: str, little_endian: bool
) -> tuple[np.ndarray, tuple[float, float]]:
    """One decoded greyscale frame -> (uint8 HxW, (centre, width) applied)."""
    if not frame.dtype.isnative:  # big endian sources
        frame = frame.astype(frame.dtype.newbyteorder("="))
    invert = inverted(attrs, photometric)
    padding = _padding_range(attrs)
    if frame.dtype.kind in "iu" and frame.dtype.itemsize <= 2:
        return _via_table(frame, attrs, little_endian, invert, padding)
    return _direct(frame, attrs, little_endian, invert, padding)


def _via_table(
    frame: np.ndarray,
    attrs: Dataset,
    little_endian: bool,
    invert: bool,
    padding: tuple[float, float] | None,
) -> tuple[np.ndarray, tuple[float, float]]:
    low, high = int(frame.min()), int(frame.max())
    if frame.size < high - low + 1 and frame.size <= WINDOW_SAMPLE_PIXELS:
        return _via_values(frame, attrs, little_endian, invert, padding)
    entries = 1 << (8 * frame.dtype.itemsize)
    code_type = np.uint8 if entries == 256 else np.uint16
    codes = frame.view(code_type)  # same bits, read as an index into the table
    # Evaluate the chain only for stored values between the frame's min and max (a CT uses a
    # few thousand of the 65,536), then scatter them into the full table.
    present = np.arange(low, high + 1, dtype=np.int64)
    present_codes = present.astype(frame.dtype).view(code_type)
    stored_values = present.astype(np.float32)

    voi = declared_voi(attrs, little_endian)
    if voi is None:
        counts = np.bincount(_subsample(codes).ravel(), minlength=entries)[present_codes]
        if padding is not None:
            counts[(stored_values >= padding[0]) & (stored_values <= padding[1])] = 0
        values = modality_transform(stored_values, attrs, little_endian)
        voi = robust_window_from_histogram(values, counts)
    table = np.zeros(entries, dtype=np.uint8)
    table[present_codes] = _to_uint8(_display(stored_values, attrs, little_endian, voi, invert))
    return _lookup(table, codes), voi.as_tuple()


def _via_values(
    frame: np.ndarray,
    attrs: Dataset,
    little_endian: bool,
    invert: bool,
    padding: tuple[float, float] | None,
) -> tuple[np.ndarray, tuple[float, float]]:
    """The table path for frames with fewer pixels than stored values between their minimum
    and maximum (a 50x10 16-bit frame spanning 0..65535): the chain is evaluated only for
    the values present, in the same ascending order, with the same counts (the whole frame is
    its own window sample at this size), so the output is the same as the table's."""
    present, inverse, counts = np.unique(frame, return_inverse=True, return_counts=True)
    stored_values = present.astype(np.float32)
    voi = declared_voi(attrs, little_endian)
    if voi is None:
        if padding is not None:
            counts[(stored_values >= padding[0]) & (stored_values <= padding[1])] = 0
        values = modality_transform(stored_values, attrs, little_endian)
        voi = robust_window_from_histogram(values, counts)
    table = _to_uint8(_display(stored_values, attrs, little_endian, voi, invert))
    return table[inverse.reshape(frame.shape)], voi.as_tuple()


# np.take is about twice as fast as fancy indexing with uint16 indices but converts them to
# 8-byte intp first; chunks keep that copy small whatever the frame size.
_LOOKUP_CHUNK = 1 << 16


def _lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = np.empty(codes.shape, dtype=table.dtype)
    flat_codes, flat_out = codes.reshape(-1), out.reshape(-1)
    for start in range(0, flat_codes.size, _LOOKUP_CHUNK):
        stop = start + _LOOKUP_CHUNK
        np.take(table, flat_codes[start:stop].astype(np.intp), out=flat_out[start:stop])
    return out


# Pixels per block on the per-pixel path: float32 temporaries stay a few MiB, not frame-sized.
_DIRECT_BLOCK = 1 << 18


def _direct(
    frame: np.ndarray,
    attrs: Dataset,
    little_endian: bool,
    invert: bool,
    padding: tuple[float, float] | None,
) -> tuple[np.ndarray, tuple[float, float]]:
    voi = declared_voi(attrs, little_endian)
    if voi is None:
        sample = _subsample(frame).astype(np.float32)
        values = modality_transform(sample, attrs, little_endian)
        if padding is not None:
            values = values[(sample < padding[0]) | (sample > padding[1])]
        voi = robust_window_from_samples(values.ravel())
    out = np.empty(frame.shape, dtype=np.uint8)
    rows = max(1, _DIRECT_BLOCK // max(1, frame.shape[1]))
    for start in range(0, frame.shape[0], rows):
        block = frame[start : start + rows].astype(np.float32)
        out[start : start + rows] = _to_uint8(_display(block, attrs, little_endian, voi, invert))
    return out, voi.as_tuple()
