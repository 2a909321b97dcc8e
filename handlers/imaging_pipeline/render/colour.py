"""Colour: RGB, YBR_* (converted by pydicom's decoders) and PALETTE COLOR to 8-bit RGB."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut

# Colour spaces pydicom's decoders return as RGB (with the default as_rgb=True).
DECODED_AS_RGB = frozenset(
    {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"}
)
PALETTE = "PALETTE COLOR"


def _scale_to_uint8(rgb: np.ndarray, bits: int) -> np.ndarray:
    if rgb.dtype == np.uint8 and bits == 8:
        return rgb
    scale = np.float32(255.0 / float(2**bits - 1))
    scaled: np.ndarray = np.rint(rgb.astype(np.float32) * scale)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _palette_bits(ds: Dataset) -> int:
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
    return int(descriptor[2]) if descriptor else 8


def render_colour(frame: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """One decoded colour frame -> uint8 HxWx3 RGB."""
    if photometric == PALETTE:
        rgb = apply_color_lut(frame, ds)
        bits = _palette_bits(ds)
        if bits == 16 and int(rgb.max(initial=0)) <= 255:
            bits = 8  # 16 bits declared, 8-bit values stored: a common writer quirk
        return _scale_to_uint8(rgb, bits)
    bits = int(ds.get("BitsStored") or frame.dtype.itemsize * 8)
    return _scale_to_uint8(frame, min(bits, frame.dtype.itemsize * 8))
