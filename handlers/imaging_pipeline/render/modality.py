"""Modality transform (PS3.3 C.11.1): stored values to modality units, e.g. Hounsfield units."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from imaging_pipeline.render.lut import read_lut
from imaging_pipeline.render.numbers import first_float, value


def modality_transform(stored: np.ndarray, attrs: Dataset, little_endian: bool) -> np.ndarray:
    """float32 stored values -> float32 modality values (a Modality LUT wins over rescale)."""
    sequence = attrs.get("ModalityLUTSequence")
    if sequence:
        try:
            signed = int(value(attrs, "PixelRepresentation", 0)) == 1
            return read_lut(sequence[0], little_endian, signed).apply(stored)
        except (AttributeError, ValueError, TypeError):
            pass  # unusable LUT: fall back to rescale, as viewers do, rather than reject
    slope = first_float(attrs, "RescaleSlope", 1.0)
    intercept = first_float(attrs, "RescaleIntercept", 0.0)
    if slope == 0.0 or not np.isfinite(slope):
        slope = 1.0  # a zero slope would erase the image; it is always a writer's mistake
    if not np.isfinite(intercept):
        intercept = 0.0
    if slope == 1.0 and intercept == 0.0:
        return stored
    result: np.ndarray = stored * np.float32(slope) + np.float32(intercept)
    return result
