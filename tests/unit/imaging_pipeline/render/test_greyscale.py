"""Greyscale display pipeline: modality -> VOI -> presentation -> 8 bits (PS3.3 C.11)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from imaging_pipeline.render import RenderOptions, render_bytes, render_dataset, render_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_windowing
from pydicom.sequence import Sequence

from tests.support.render_fixtures import bundled, ct_dataset, ct_slice, part10, synthetic

PNG = RenderOptions(format="png", max_size=4096)


def _gradient(low: int, high: int, dtype: type, shape: tuple[int, int] = (64, 256)) -> np.ndarray:
    row = np.linspace(low, high, shape[1])
    return np.rint(np.tile(row, (shape[0], 1))).astype(dtype)


def _regions(size: int = 512) -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - size / 2, y - size / 2) / (size / 2)
    return {
        "air": (r > 0.85) & (r < 0.95),
        "fat": (r > 0.72) & (r < 0.78),
        "soft": (r > 0.3) & (r < 0.65),
        "bone": (r > 0.21) & (r < 0.24),
    }


def test_monochrome1_renders_as_the_inverse_of_monochrome2() -> None:
    pixels = _gradient(0, 4095, np.uint16)
    attrs: dict[str, Any] = {"WindowCenter": 2048, "WindowWidth": 4096}
    m2 = render_dataset(synthetic(pixels, "MONOCHROME2", bits_stored=12, **attrs), PNG).pixels
    m1 = render_dataset(synthetic(pixels, "MONOCHROME1", bits_stored=12, **attrs), PNG).pixels
    assert m2[0, 0] == 0 and m2[0, -1] == 255
    assert m1[0, 0] == 255 and m1[0, -1] == 0  # lowest stored value is white in MONOCHROME1
    assert np.abs(m1.astype(int) - (255 - m2.astype(int))).max() <= 1


def test_monochrome1_inverse_also_with_a_robust_window() -> None:
    pixels = ct_slice(128).astype(np.uint16)
    m2 = render_dataset(synthetic(pixels, "MONOCHROME2"), PNG)
    m1 = render_dataset(synthetic(pixels, "MONOCHROME1"), PNG)
    assert m1.window == m2.window
    assert np.abs(m1.pixels.astype(int) - (255 - m2.pixels.astype(int))).max() <= 1


def test_presentation_lut_shape_inverse_inverts_once() -> None:
    pixels = _gradient(0, 255, np.uint8)
    plain = render_dataset(synthetic(pixels, "MONOCHROME2"), PNG).pixels
    inverse = synthetic(pixels, "MONOCHROME2", PresentationLUTShape="INVERSE")
    assert np.abs(render_dataset(inverse, PNG).pixels.astype(int) - (255 - plain)).max() <= 1
    # MONOCHROME1 with its (mandatory in DX) INVERSE shape is one inversion, not two.
    m1 = synthetic(pixels, "MONOCHROME1", PresentationLUTShape="INVERSE")
    assert render_dataset(m1, PNG).pixels[0, 0] == 255


def test_ct_hounsfield_units_with_a_soft_tissue_window() -> None:
    image = render_bytes(part10(ct_dataset(WindowCenter=40, WindowWidth=400)), PNG)
    assert image.window == (40.0, 400.0)
    median = {name: float(np.median(image.pixels[mask])) for name, mask in _regions().items()}
    # LINEAR window 40/400: air and bone clip, fat (-100 HU) ~ 38, soft tissue (40 HU) ~ 128.
    assert median["air"] == 0
    assert median["bone"] == 255
    assert median["fat"] == pytest.approx(((-100 - 39.5) / 399 + 0.5) * 255, abs=3)
    assert median["soft"] == pytest.approx(((40 - 39.5) / 399 + 0.5) * 255, abs=3)


def test_rescale_slope_is_applied_before_the_window() -> None:
    hu = ct_slice(128).astype(np.float32) - 1024
    halved = np.rint((hu + 1024) / 2).astype(np.int16)  # stored = (HU + 1024) / 2
    ds = synthetic(halved, RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    reference = ct_dataset(128, WindowCenter=40, WindowWidth=400)
    difference = render_dataset(ds, PNG).pixels.astype(int) - render_dataset(reference, PNG).pixels
    assert np.percentile(np.abs(difference), 99) <= 2  # equal up to the halving's rounding


def test_first_of_a_multi_valued_window_is_used() -> None:
    multi = ct_dataset(128, WindowCenter=[40, 300], WindowWidth=[400, 1500])
    single = ct_dataset(128, WindowCenter=40, WindowWidth=400)
    image = render_dataset(multi, PNG)
    assert image.window == (40.0, 400.0)
    assert np.array_equal(image.pixels, render_dataset(single, PNG).pixels)


def test_invalid_first_window_falls_back_to_the_next_valid_one() -> None:
    image = render_dataset(ct_dataset(64, WindowCenter=[40, 300], WindowWidth=[0, 1500]), PNG)
    assert image.window == (300.0, 1500.0)


def _voi_lut_item(entries: int, first: int, bits: int, table: np.ndarray) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [entries, first, bits]
    item.LUTData = [int(v) for v in table]
    return item


def test_voi_lut_sequence_is_applied() -> None:
    pixels = _gradient(0, 4095, np.uint16)
    curve = np.rint(255 * np.sqrt(np.arange(4096) / 4095)).astype(int)  # non-linear on purpose
    ds = synthetic(
        pixels, bits_stored=12, VOILUTSequence=Sequence([_voi_lut_item(4096, 0, 8, curve)])
    )
    image = render_dataset(ds, PNG)
    assert np.array_equal(image.pixels, curve[pixels].astype(np.uint8))
    assert image.window == (2048.0, 4096.0)  # the LUT's input range as centre/width


def test_voi_lut_sequence_with_16_bit_entries_and_offset_first_value() -> None:
    pixels = _gradient(-500, 1500, np.int16)
    table = np.linspace(0, 65535, 1000).astype(int)  # covers inputs 0..999
    ds = synthetic(pixels, VOILUTSequence=Sequence([_voi_lut_item(1000, 0, 16, table)]))
    out = render_dataset(ds, PNG).pixels[0].astype(int)
    values = pixels[0]
    assert (out[values <= 0] == 0).all() and (out[values >= 999] == 255).all()
    inside = (values > 0) & (values < 999)
    expected = np.rint(table[values[inside]] / 65535 * 255)
    assert np.abs(out[inside] - expected).max() <= 1


def test_signed_16_bit_data() -> None:
    pixels = _gradient(-1000, 1000, np.int16)
    image = render_dataset(synthetic(pixels, WindowCenter=0, WindowWidth=2000), PNG)
    row = image.pixels[0].astype(int)
    assert row[0] == 0 and row[-1] == 255  # -1000 is black: not read as 64536
    assert abs(row[len(row) // 2] - 128) <= 1
    assert (np.diff(row) >= 0).all()


def test_signed_12_bit_stored_in_16() -> None:
    pixels = _gradient(-2048, 2047, np.int16)
    image = render_dataset(synthetic(pixels, bits_stored=12, WindowCenter=0, WindowWidth=4096))
    row = image.pixels[0].astype(int)
    assert row[0] <= 1 and row[-1] >= 254 and (np.diff(row) >= -1).all()


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_voi_lut_functions_match_pydicom(function: str) -> None:
    pixels = _gradient(0, 4095, np.uint16)
    ds = synthetic(
        pixels,
        bits_stored=12,
        WindowCenter=1500,
        WindowWidth=1000,
        VOILUTFunction=function,
        RescaleSlope=1,
        RescaleIntercept=0,
    )
    oracle = apply_windowing(apply_modality_lut(pixels, ds), ds) / 4095.0 * 255.0
    difference = np.abs(render_dataset(ds, PNG).pixels - oracle)
    assert difference.max() <= 1.0


def test_modality_lut_sequence_is_applied_before_the_window() -> None:
    pixels = _gradient(0, 255, np.uint8)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.LUTData = [4 * i for i in range(256)]  # stored v -> 4 v
    ds = synthetic(
        pixels,
        ModalityLUTSequence=Sequence([item]),
        WindowCenter=512,
        WindowWidth=512,
        VOILUTFunction="LINEAR_EXACT",
    )
    row = render_dataset(ds, PNG).pixels[0].astype(int)
    expected = np.clip((4.0 * pixels[0] - 512) / 512 + 0.5, 0, 1) * 255
    assert np.abs(row - expected).max() <= 1


def test_robust_window_ignores_outliers_instead_of_min_max() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.normal(1000, 100, (256, 256)).astype(np.uint16)
    pixels.flat[rng.choice(pixels.size, 30, replace=False)] = 60000  # a few hot pixels
    image = render_dataset(synthetic(pixels), PNG)
    center, width = image.window  # type: ignore[misc]
    assert 900 < center < 1100 and width < 1000  # min/max would give width ~ 59,500
    spread = np.percentile(image.pixels, 95) - np.percentile(image.pixels, 5)
    assert spread > 150  # the bulk of the image uses the display range


def test_robust_window_excludes_pixel_padding() -> None:
    padded = render_dataset(ct_dataset(128), PNG)
    unpadded_ds = ct_dataset(128)
    del unpadded_ds.PixelPaddingValue
    unpadded = render_dataset(unpadded_ds, PNG)
    low = padded.window[0] - padded.window[1] / 2  # type: ignore[index]
    assert -1100 < low < -900  # air, not the -3024 HU padding
    assert unpadded.window[0] - unpadded.window[1] / 2 < -3000  # type: ignore[index]


def test_table_path_and_direct_path_agree() -> None:
    """16-bit data goes through one 65,536-entry table; 32-bit data is windowed per pixel."""
    stored = ct_slice(128)
    as16 = render_dataset(ct_dataset(128), PNG)
    ds32 = synthetic(
        stored.astype(np.int32), RescaleIntercept=-1024, RescaleSlope=1, PixelPaddingValue=-2000
    )
    as32 = render_dataset(ds32, PNG)
    assert as32.window == pytest.approx(as16.window, abs=1.0)
    assert np.abs(as32.pixels.astype(int) - as16.pixels).max() <= 1


def test_enhanced_multiframe_functional_groups_give_rescale_and_per_frame_window() -> None:
    frames = np.stack([ct_slice(64, seed) for seed in range(3)])
    ds = synthetic(frames)
    transform = Dataset()
    transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = -1024, 1, "HU"
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for center in (40, 300, -600):
        voi, group = Dataset(), Dataset()
        voi.WindowCenter, voi.WindowWidth = center, 400
        group.FrameVOILUTSequence = Sequence([voi])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    assert render_dataset(ds, RenderOptions(frame=2)).window == (-600.0, 400.0)
    soft = render_dataset(ds, RenderOptions(frame=0, format="png"))
    assert soft.window == (40.0, 400.0)
    centre = soft.pixels[24:40, 24:40]  # soft tissue at 40 HU: mid grey only if rescaled
    assert 110 < np.median(centre) < 145


def test_lossless_transfer_syntaxes_render_identically() -> None:
    names = [
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_implicit.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_padded.dcm",
    ]
    reference = render_file(bundled(names[0]), PNG).pixels
    assert reference.std() > 10
    for name in names[1:]:
        assert np.array_equal(render_file(bundled(name), PNG).pixels, reference), name


def test_float_pixel_data_with_a_small_range_gets_full_contrast() -> None:
    """Parametric maps store float32 (Float Pixel Data); a 0..0.5 range still spans 0..255."""
    ds = synthetic(np.zeros((4, 4), dtype=np.uint8), sop_class="1.2.840.10008.5.1.4.1.1.30")
    del ds.PixelData
    values = np.linspace(0.0, 0.5, 64 * 64, dtype=np.float32).reshape(64, 64)
    ds.Rows, ds.Columns, ds.BitsAllocated = 64, 64, 32
    for keyword in ("BitsStored", "HighBit", "PixelRepresentation"):
        delattr(ds, keyword)
    ds.FloatPixelData = values.tobytes()
    image = render_bytes(part10(ds), PNG)
    assert image.window is not None and image.window[1] < 0.5
    assert image.pixels.min() == 0 and image.pixels.max() == 255
    assert (np.diff(image.pixels.astype(int).ravel()) >= 0).all()


def test_large_float_pixel_data_from_bytes() -> None:
    """Float Pixel Data above the deferral size is read back from the bytes for decoding."""
    ds = synthetic(np.zeros((4, 4), dtype=np.uint8), sop_class="1.2.840.10008.5.1.4.1.1.30")
    del ds.PixelData
    values = np.linspace(-1.0, 1.0, 640 * 640, dtype=np.float32).reshape(640, 640)
    ds.Rows, ds.Columns, ds.BitsAllocated = 640, 640, 32
    for keyword in ("BitsStored", "HighBit", "PixelRepresentation"):
        delattr(ds, keyword)
    ds.FloatPixelData = values.tobytes()
    data = part10(ds)
    assert len(data) > 2**20
    image = render_bytes(data, PNG)
    assert image.pixels[0, 0] == 0 and image.pixels[-1, -1] == 255
