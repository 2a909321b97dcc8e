"""Colour: RGB, YBR_* (converted by pydicom's decoders) and PALETTE COLOR to 8-bit RGB."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut

from imaging_pipeline.render.numbers import value

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


def _palette_pixels(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """The palette lookup and the scaling to 8 bits, both functions of the stored value,
    evaluated once per stored value between the frame's minimum and maximum and mapped with
    one table lookup of packed pixels, or Pillow's palette image for 8-bit indices
    (pydicom's `apply_color_lut` on the frame itself costs a mask, a clip and a fancy index per
    channel, then a float copy of the RGB frame to scale it: 4-5x the time on a 350x800
    ultrasound)."""
    if frame.dtype.kind not in "iu" or frame.dtype.itemsize > 2 or frame.size == 0:
        rgb = apply_color_lut(frame, ds)
        return _scale_to_uint8(rgb, _effective_bits(ds, int(rgb.max(initial=0))))
    low = int(frame.min())
    values = np.arange(low, int(frame.max()) + 1, dtype=np.int64).astype(frame.dtype)
    table = apply_color_lut(values, ds)  # (stored values, channels)
    index = frame.astype(np.intp)
    if low:
        index -= low
    maximum = int(table.max(initial=0))
    if _palette_bits(ds) == 16 and maximum > 255:
        # The 8-bit quirk below looks only at the values the frame really uses.
        used = np.bincount(index.ravel(), minlength=len(values)) > 0
        maximum = int(table[used].max(initial=0))
    scaled = _scale_to_uint8(table, _effective_bits(ds, maximum))
    channels = scaled.shape[-1]
    if frame.dtype == np.uint8 and channels == 3:
        # 8-bit indices: Pillow's palette image maps them in C (0.6 ms against 3.5 ms for the
        # packed lookup below on a 350x800 ultrasound).
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[low : low + len(scaled)] = scaled
        image = Image.fromarray(frame)
        image.putpalette(palette.tobytes())
        return np.asarray(image.convert("RGB"))
    # One 4-byte word per table entry (R, G, B[, A] in memory order), one lookup per pixel.
    words = np.zeros((len(scaled), 4), dtype=np.uint8)
    words[:, :channels] = scaled
    packed = np.take(words.view("<u4").reshape(-1), index)
    if channels == 4:
        return packed.view(np.uint8).reshape(*frame.shape, 4)
    # Dropping the fourth byte: Pillow's unpacker is far faster than numpy's strided copy.
    height, width = frame.shape
    return np.asarray(Image.frombytes("RGB", (width, height), packed, "raw", "RGBX"))


def _effective_bits(ds: Dataset, maximum: int) -> int:
    bits = _palette_bits(ds)
    if bits == 16 and maximum <= 255:
        bits = 8  # 16 bits declared, 8-bit values stored: a common writer quirk
    return bits


def render_colour(frame: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """One decoded colour frame -> uint8 HxWx3 RGB."""
    if photometric == PALETTE:
        return _palette_pixels(frame, ds)
    bits = int(value(ds, "BitsStored") or frame.dtype.itemsize * 8)
    return _scale_to_uint8(frame, min(bits, frame.dtype.itemsize * 8))
