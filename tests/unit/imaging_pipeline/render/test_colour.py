"""Colour: RGB, YBR_* and PALETTE COLOR come out as correct 8-bit RGB."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from imaging_pipeline.render import RenderOptions, render_dataset, render_file
from pydicom.pixels import apply_color_lut, pixel_array

from tests.support.render_fixtures import bundled, secondary_capture

PNG = RenderOptions(format="png", max_size=4096)
# dcmtk's colour test image, stored as RGB and as YBR variants (JPEG and uncompressed).
RGB_REFERENCE = "SC_rgb_dcmtk_+eb+cr.dcm"


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_dcmtk_+eb+cy+np.dcm",  # YBR_FULL_422, JPEG baseline
        "SC_rgb_dcmtk_+eb+cy+s2.dcm",  # YBR_FULL_422, JPEG baseline
        "SC_ybr_full_422_uncompressed.dcm",  # YBR_FULL_422, native (subsampled in the file)
        "SC_rgb_dcmtk_+eb+cy+n1.dcm",  # YBR_FULL, JPEG baseline
    ],
)
def test_ybr_renders_as_the_same_rgb_as_the_rgb_original(name: str) -> None:
    ybr = render_file(bundled(name), PNG)
    assert ybr.photometric.startswith("YBR_FULL")
    assert ybr.window is None
    reference = render_file(bundled(RGB_REFERENCE), PNG).pixels.astype(int)
    difference = np.abs(ybr.pixels.astype(int) - reference)
    assert ybr.pixels.shape == (100, 100, 3)
    assert difference.mean() < 3  # lossy JPEG noise only; unconverted YCbCr is off by ~100
    assert [int(v) for v in ybr.pixels[5, 5]] == pytest.approx([255, 0, 0], abs=8)  # red is red


def test_multiframe_ybr_full_422_jpeg_is_plausible_colour() -> None:
    image = render_file(bundled("examples_ybr_color.dcm"), PNG)
    assert image.frames == 30 and image.frame == 15 and image.pixels.shape == (240, 320, 3)
    # Ultrasound: mostly grey. Unconverted YCbCr would put Cb/Cr (~128) in G and B.
    channels = image.pixels.reshape(-1, 3).astype(int)
    assert np.abs(channels[:, 1] - channels[:, 0]).mean() < 8


def test_palette_colour_matches_pydicom_lookup() -> None:
    ds = pydicom.dcmread(bundled("examples_palette.dcm"))
    rgb = apply_color_lut(pixel_array(ds), ds)
    bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    expected = np.rint(rgb.astype(np.float64) * 255 / (2**bits - 1))
    image = render_file(bundled("examples_palette.dcm"), PNG)
    assert image.window is None and image.pixels.shape == (*pixel_array(ds).shape, 3)
    assert np.abs(image.pixels - expected).max() <= 1
    assert len(np.unique(image.pixels.reshape(-1, 3), axis=0)) > 20  # really in colour


def test_synthetic_palette_with_16_bit_entries() -> None:
    index = np.tile(np.arange(256, dtype=np.uint8), (8, 1))
    ds = secondary_capture(index, "PALETTE COLOR")
    ramp = np.arange(256, dtype="<u2") * 257  # 0..65535
    for colour, table in (("Red", ramp), ("Green", ramp[::-1]), ("Blue", np.zeros(256, "<u2"))):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", table.tobytes())
    row = render_dataset(ds, PNG).pixels[0].astype(int)
    assert np.array_equal(row[:, 0], np.arange(256))
    assert np.array_equal(row[:, 1], 255 - np.arange(256))
    assert not row[:, 2].any()


@pytest.mark.parametrize("name", ["SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit.dcm"])
def test_deep_rgb_is_scaled_to_8_bits(name: str) -> None:
    eight = render_file(bundled("SC_rgb_rle.dcm"), PNG).pixels.astype(int)
    deep = render_file(bundled(name), PNG).pixels.astype(int)
    assert np.abs(deep - eight).max() <= 1


def test_rgb_keeps_channel_order() -> None:
    pixels = np.zeros((16, 16, 3), dtype=np.uint8)
    pixels[:, :8, 0] = 200  # red left
    pixels[:, 8:, 2] = 100  # blue right
    image = render_dataset(secondary_capture(pixels, "RGB"), PNG).pixels
    assert tuple(image[8, 2]) == (200, 0, 0) and tuple(image[8, 13]) == (0, 0, 100)
