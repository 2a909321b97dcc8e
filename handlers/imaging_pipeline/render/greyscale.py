"""Greyscale pipeline: stored values -> modality -> VOI -> presentation -> 8 bits.

Every step is a pointwise function of the stored value, so for 8- and 16-bit data the whole
chain is evaluated once per possible stored value (at most 65,536 float32 entries) and the
frame is mapped with one table lookup: no float copy of the frame, and a robust window from
a histogram instead of sorting pixels. Other data (32-bit, float) runs the same functions on
the frame itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydicom.dataset import Dataset

from imaging_pipeline.render.modality import modality_transform
from imaging_pipeline.render.numbers import first_float
from imaging_pipeline.render.voi import (
    Voi,
    Window,
    declared_voi,
    robust_window_from_histogram,
    robust_window_from_samples,
)

# Robust windows look at up to about this many pixels (a regular subsample of large frames).
WINDOW_SAMPLE_PIXELS = 1 << 20


def inverted(attrs: Dataset, photometric: str) -> bool:
    """MONOCHROME1 (minimum is white) and an INVERSE presentation LUT both display inverted."""
    shape = str(attrs.get("PresentationLUTShape", "") or "").strip().upper()
    return photometric == "MONOCHROME1" or shape == "INVERSE"


def _display(
    stored: np.ndarray,
    attrs: Dataset,
    little_endian: bool,
    robust: Callable[[np.ndarray], Window],
    invert: bool,
) -> tuple[np.ndarray, Voi]:
    values = modality_transform(stored, attrs, little_endian)
    voi = declared_voi(attrs, little_endian) or robust(values)
    grey = voi.apply(values)
    if invert:
        grey = np.float32(1.0) - grey
    return grey, voi


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
    code_type = np.uint8 if frame.dtype.itemsize == 1 else np.uint16
    codes = frame.view(code_type)  # same bits, read as an index into the table
    stored = np.arange(1 << (8 * frame.dtype.itemsize), dtype=np.int64).astype(code_type)
    stored_values = stored.view(frame.dtype).astype(np.float32)

    def robust(values: np.ndarray) -> Window:
        counts = np.bincount(_subsample(codes).ravel(), minlength=len(values))
        if padding is not None:
            low, high = padding
            counts[(stored_values >= low) & (stored_values <= high)] = 0
        return robust_window_from_histogram(values, counts)

    grey, voi = _display(stored_values, attrs, little_endian, robust, invert)
    table = _to_uint8(grey)
    image: np.ndarray = table[codes]
    return image, voi.as_tuple()


def _direct(
    frame: np.ndarray,
    attrs: Dataset,
    little_endian: bool,
    invert: bool,
    padding: tuple[float, float] | None,
) -> tuple[np.ndarray, tuple[float, float]]:
    stored = frame.astype(np.float32)

    def robust(values: np.ndarray) -> Window:
        sample = _subsample(values)
        if padding is not None:
            raw = _subsample(stored)
            sample = sample[(raw < padding[0]) | (raw > padding[1])]
        return robust_window_from_samples(sample.ravel())

    grey, voi = _display(stored, attrs, little_endian, robust, invert)
    return _to_uint8(grey), voi.as_tuple()
