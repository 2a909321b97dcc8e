"""Every file bundled with pydicom either renders or is rejected with the right reason, and
what renders matches pydicom's own modality/VOI functions (an independent float64 oracle)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from imaging_pipeline.render import (
    RejectReason,
    RenderOptions,
    RenderRejected,
    render_dataset,
    render_file,
)
from pydicom.pixels import apply_modality_lut, apply_voi_lut, pixel_array

from tests.support.render_fixtures import PYDICOM_TEST_FILES, decoded

ALL_FILES = sorted(p for p in PYDICOM_TEST_FILES.rglob("*") if p.is_file())
R = RejectReason

# Pixel-bearing files that must be rejected, and why (checked against pydicom's own decoder
# in test_expected_corrupt_files_really_fail_to_decode).
PIXEL_REJECTIONS = {
    "JPEG-lossy.dcm": R.CORRUPT_PIXEL_DATA,  # a JPEG stream libjpeg cannot decode
    "JPEG2000-embedded-sequence-delimiter.dcm": R.CORRUPT_PIXEL_DATA,
    "MR_truncated.dcm": R.TRUNCATED,  # 8130 of 8192 pixel bytes
    "meta_missing_tsyntax.dcm": R.CORRUPT_PIXEL_DATA,  # pixel data without Rows/Columns
    "nested_priv_SQ.dcm": R.CORRUPT_PIXEL_DATA,
    "badVR.dcm": R.NON_IMAGE_SOP_CLASS,  # RT Dose
    "liver_1frame.dcm": R.NON_IMAGE_SOP_CLASS,  # Segmentation
    "liver_expb_1frame.dcm": R.NON_IMAGE_SOP_CLASS,
    **{
        name: R.NON_IMAGE_SOP_CLASS
        for name in (
            "rtdose.dcm",
            "rtdose_1frame.dcm",
            "rtdose_expb.dcm",
            "rtdose_expb_1frame.dcm",
            "rtdose_rle.dcm",
            "rtdose_rle_1frame.dcm",
        )
    },
}
# Files without pixel data whose reason is more specific than NO_PIXEL_DATA.
OTHER_REJECTIONS = {
    "reportsi.dcm": R.NON_IMAGE_SOP_CLASS,  # SR
    "reportsi_with_empty_number_tags.dcm": R.NON_IMAGE_SOP_CLASS,
    "test-SR.dcm": R.NON_IMAGE_SOP_CLASS,
    "rtplan.dcm": R.NON_IMAGE_SOP_CLASS,
    "rtplan_truncated.dcm": R.NON_IMAGE_SOP_CLASS,
    "rtstruct.dcm": R.NON_IMAGE_SOP_CLASS,  # no preamble or file meta, still recognised
    "ExplVR_BigEndNoMeta.dcm": R.NON_IMAGE_SOP_CLASS,  # RT Ion Plan without file meta
    "ExplVR_LitEndNoMeta.dcm": R.NON_IMAGE_SOP_CLASS,
    "waveform_ecg.dcm": R.NON_IMAGE_SOP_CLASS,
}


def _pixel_bearing(path: Path) -> bool:
    """Independent of the renderer: does pydicom find a pixel data element at all?"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            return False
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def test_corpus_is_the_bundled_one() -> None:
    names = {p.name for p in ALL_FILES}
    assert len(ALL_FILES) > 150
    assert {"CT_small.dcm", "examples_palette.dcm", "examples_ybr_color.dcm"} <= names


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(PYDICOM_TEST_FILES)))
@pytest.mark.filterwarnings("ignore:Expected explicit VR, but found implicit VR:UserWarning")
def test_every_bundled_file_renders_or_is_rejected_with_the_right_reason(path: Path) -> None:
    expected = PIXEL_REJECTIONS.get(path.name) or OTHER_REJECTIONS.get(path.name)
    pixel_bearing = _pixel_bearing(path)
    if expected is None and not pixel_bearing:
        with pytest.raises(RenderRejected) as info:
            render_file(path)
        assert info.value.reason in {R.NO_PIXEL_DATA, R.NOT_DICOM}
        # Parsable DICOM without pixels says so; only non-DICOM is NOT_DICOM.
        if info.value.reason is R.NOT_DICOM:
            with pytest.raises(pydicom.errors.InvalidDicomError):
                pydicom.dcmread(path)
        return
    if expected is not None:
        with pytest.raises(RenderRejected) as info:
            render_file(path)
        assert info.value.reason is expected, str(info.value)
        return
    image = render_file(path, RenderOptions(format="png"))
    pixels = decoded(image.data)
    assert pixels.dtype == np.uint8
    assert (image.width, image.height) == (pixels.shape[1], pixels.shape[0])
    assert np.array_equal(pixels, image.pixels), "PNG output is the lossless image of .pixels"
    assert image.pixels.ndim == (2 if image.photometric.startswith("MONOCHROME") else 3)
    assert 0 <= image.frame < image.frames
    assert (image.window is None) == (not image.photometric.startswith("MONOCHROME"))


@pytest.mark.parametrize(
    "name", sorted(n for n, r in PIXEL_REJECTIONS.items() if r is R.CORRUPT_PIXEL_DATA)
)
def test_expected_corrupt_files_really_fail_to_decode(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(PYDICOM_TEST_FILES / name, force=True)
        with pytest.raises(Exception):  # noqa: B017 (any decoder failure)
            pixel_array(ds, index=0)


def _pydicom_grey_oracle(ds: pydicom.Dataset) -> np.ndarray:
    """pydicom's modality + VOI in float64, normalised the way its apply_windowing ranges
    outputs, inverted for MONOCHROME1, as 0..255 floats."""
    arr = apply_modality_lut(pixel_array(ds, index=0), ds)
    if "VOILUTSequence" in ds:
        item = ds.VOILUTSequence[0]
        out = apply_voi_lut(arr, ds).astype(np.float64)
        grey = out / (2 ** int(item.LUTDescriptor[2]) - 1)
    else:
        bits = int(ds.BitsStored)
        if ds.PixelRepresentation == 0:
            y_min, y_max = 0.0, 2.0**bits - 1
        else:
            y_min, y_max = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
        slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
        y_min, y_max = y_min * slope + intercept, y_max * slope + intercept
        grey = (apply_voi_lut(arr, ds).astype(np.float64) - y_min) / (y_max - y_min)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        grey = 1.0 - grey
    return np.asarray(grey * 255.0)


def _declared_voi_greyscale_files() -> list[Path]:
    found = []
    for path in ALL_FILES:
        if path.name in PIXEL_REJECTIONS or not _pixel_bearing(path):
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME") and (
            "WindowWidth" in ds or "VOILUTSequence" in ds
        ):
            found.append(path)
    return found


DECLARED_VOI = _declared_voi_greyscale_files()


def test_the_oracle_comparison_covers_many_files() -> None:
    assert len(DECLARED_VOI) >= 30


@pytest.mark.parametrize("path", DECLARED_VOI, ids=lambda p: str(p.relative_to(PYDICOM_TEST_FILES)))
@pytest.mark.filterwarnings("ignore:The pixel data is .* excess padding:UserWarning")  # pydicom's
def test_greyscale_matches_pydicom_modality_and_voi(path: Path) -> None:
    ds = pydicom.dcmread(path)
    expected = _pydicom_grey_oracle(ds)
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "PixelAspectRatio"):
        ds.pop(keyword, None)  # compare pixel for pixel: no resampling of non-square pixels
    image = render_dataset(ds, RenderOptions(format="png", max_size=4096))
    assert (image.width, image.height) == (ds.Columns, ds.Rows)
    difference = np.abs(image.pixels.astype(np.float64) - expected)
    assert difference.max() <= 1.0, f"max difference {difference.max()} grey levels"
