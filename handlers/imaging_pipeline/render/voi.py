"""VOI transform (PS3.3 C.11.2): modality values to display intensities in [0, 1].

Choice, in order: the VOI LUT Sequence (the modality's own display curve), the first valid
window centre/width pair with its VOILUTFunction, otherwise a robust window from the pixel
distribution (percentiles, ignoring padding), never min/max.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from imaging_pipeline.render.lut import StoredLut, read_lut
from imaging_pipeline.render.numbers import floats, value

ROBUST_PERCENTILES = (0.5, 99.5)
_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "LINEAR"

    def apply(self, x: np.ndarray) -> np.ndarray:
        c, w = np.float32(self.center), np.float32(self.width)
        if self.function == "SIGMOID":
            y = 1.0 / (1.0 + np.exp(np.float32(-4.0) * (x - c) / w))
        elif self.function == "LINEAR_EXACT":
            y = (x - c) / w + np.float32(0.5)
        elif self.width <= 1.0:  # LINEAR with width 1 is a threshold at c - 0.5
            y = (x > c - np.float32(0.5)).astype(np.float32)
        else:
            y = (x - (c - np.float32(0.5))) / (w - np.float32(1.0)) + np.float32(0.5)
        clipped: np.ndarray = np.clip(y, 0.0, 1.0).astype(np.float32, copy=False)
        return clipped

    def as_tuple(self) -> tuple[float, float]:
        return (float(self.center), float(self.width))


@dataclass(frozen=True)
class LutVoi:
    lut: StoredLut

    def apply(self, x: np.ndarray) -> np.ndarray:
        scaled: np.ndarray = self.lut.apply(x) / np.float32(2**self.lut.bits - 1)
        return np.clip(scaled, 0.0, 1.0)

    def as_tuple(self) -> tuple[float, float]:
        """The input range the LUT covers, expressed as the equivalent (centre, width)."""
        entries = len(self.lut.table)
        return (self.lut.first_mapped + entries / 2.0, float(entries))


Voi = Window | LutVoi


def _signed_input(attrs: Dataset) -> bool:
    """Whether modality values can be negative, so the LUT's first mapped value is SS."""
    intercept = floats(attrs, "RescaleIntercept")
    signed_pixels = int(value(attrs, "PixelRepresentation", 0) or 0) == 1
    return signed_pixels or (bool(intercept) and intercept[0] < 0)


def declared_voi(attrs: Dataset, little_endian: bool) -> Voi | None:
    """The VOI the object asks for, or None when it declares no usable one."""
    sequence = attrs.get("VOILUTSequence")
    if sequence:
        try:
            return LutVoi(read_lut(sequence[0], little_endian, _signed_input(attrs)))
        except (AttributeError, ValueError, TypeError):
            pass  # a broken LUT falls through to the window, as viewers do
    centers = floats(attrs, "WindowCenter")
    widths = floats(attrs, "WindowWidth")
    function = str(value(attrs, "VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in _FUNCTIONS:
        function = "LINEAR"
    minimum_width = 1.0 if function == "LINEAR" else 0.0
    for center, width in zip(centers, widths, strict=False):
        if np.isfinite(center) and np.isfinite(width) and width > minimum_width:
            return Window(center, width, function)
    return None


def _window_between(low: float, high: float) -> Window:
    """LINEAR_EXACT maps low..high onto the full range (float data may span less than 1)."""
    width = high - low if high > low else 1.0
    return Window((low + high) / 2.0, width, "LINEAR_EXACT")


def robust_window_from_samples(values: np.ndarray) -> Window:
    """Percentile window of a (sub)sample of modality values."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Window(0.0, 1.0, "LINEAR_EXACT")
    low, high = np.percentile(finite, ROBUST_PERCENTILES)
    return _window_between(float(low), float(high))


def robust_window_from_histogram(values: np.ndarray, counts: np.ndarray) -> Window:
    """Percentile window from a histogram: `counts[i]` pixels have modality value `values[i]`.

    Exact nearest-rank percentiles of the counted pixels, at the cost of one sort of at
    most 65,536 table entries instead of one of every pixel.
    """
    present = counts > 0
    if not present.any():
        return Window(0.0, 1.0, "LINEAR_EXACT")
    v, c = values[present], counts[present]
    order = np.argsort(v, kind="stable")
    v, cumulative = v[order], np.cumsum(c[order])
    total = cumulative[-1]
    low_rank, high_rank = (np.ceil(p / 100.0 * total) for p in ROBUST_PERCENTILES)
    low = v[min(np.searchsorted(cumulative, max(low_rank, 1)), len(v) - 1)]
    high = v[min(np.searchsorted(cumulative, max(high_rank, 1)), len(v) - 1)]
    return _window_between(float(low), float(high))
