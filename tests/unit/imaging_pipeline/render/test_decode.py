"""Decoding one frame: the same samples as pydicom's own decoder, whichever path reads them."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from imaging_pipeline.render import RenderOptions, render_bytes, render_dataset
from imaging_pipeline.render.decode import _native_frame, decode_frame, opener, read_dataset
from imaging_pipeline.render.header import check_header
from PIL import Image
from pydicom.pixels import pixel_array
from pydicom.uid import JPEGBaseline8Bit

from tests.support.render_fixtures import PYDICOM_TEST_FILES, part10, synthetic

PNG = RenderOptions(format="png", max_size=4096)


def _renderable(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            header = check_header(ds)
            pixel_array(ds, index=header.frames // 2)
        except Exception:
            return False
    return True


BUNDLED = [p for p in sorted(PYDICOM_TEST_FILES.rglob("*")) if p.is_file() and _renderable(p)]


def test_many_bundled_files_are_compared() -> None:
    assert len(BUNDLED) >= 75


def _is_jpeg_baseline(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    return bool(ds.file_meta.get("TransferSyntaxUID") == JPEGBaseline8Bit)


JPEG_BASELINE = [p for p in BUNDLED if _is_jpeg_baseline(p)]
# dcmtk cannot parse this file's header (an element whose length runs past the end).
DCMTK_REFUSES = {"SC_rgb_jpeg.dcm"}


def _frame(path: Path) -> tuple[np.ndarray, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = opener(path.read_bytes())
        ds = read_dataset(source)
        header = check_header(ds)
        index = header.frames // 2
        return decode_frame(ds, header, index, source), index


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(PYDICOM_TEST_FILES)))
def test_frame_matches_pydicom_pixel_array(path: Path) -> None:
    """Native frames are read without pydicom's decoder, compressed ones through a preferred
    plugin: the samples must still be pydicom's, exactly, except 8-bit JPEG Baseline, which
    is decoded as dcmtk decodes it (next test): pydicom's libjpeg rounds some samples apart."""
    frame, index = _frame(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pixel_array(pydicom.dcmread(path), index=index)
    assert frame.shape == expected.shape
    assert frame.dtype.kind == expected.dtype.kind
    assert frame.dtype.itemsize == expected.dtype.itemsize
    if path in JPEG_BASELINE:
        difference = np.abs(frame.astype(int) - expected.astype(int))
        # Rounding in the inverse DCT and the YCbCr->RGB maths; a wrong transform is ~100 off.
        assert difference.max() <= 3
        assert difference.mean() < 0.5
    else:
        assert np.array_equal(frame, expected)


def test_the_jpeg_baseline_files_cover_every_colour_case() -> None:
    names = {p.name for p in JPEG_BASELINE}
    assert {
        "SC_jpeg_no_color_transform.dcm",  # RGB, no JFIF or Adobe marker: libjpeg guesses YCbCr
        "SC_rgb_jpeg_app14_dcmd.dcm",  # RGB with an Adobe marker
        "SC_rgb_dcmtk_+eb+cy+np.dcm",  # YBR_FULL_422
        "SC_rgb_dcmtk_+eb+cy+n1.dcm",  # YBR_FULL
    } <= names


@pytest.mark.parametrize("path", JPEG_BASELINE, ids=lambda p: p.name)
def test_jpeg_baseline_frames_are_the_samples_dcmtk_decodes(path: Path, tmp_path: Path) -> None:
    """dcmj2pnm's raw output (+on: no windowing, colour converted as the Photometric
    Interpretation says) is the oracle, to the bit. The one file dcmtk refuses is held to
    pydicom's samples by the test above; here it must still be refused."""
    frame, index = _frame(path)
    out = tmp_path / "frame.pnm"
    done = subprocess.run(
        ["dcmj2pnm", "--quiet", "+F", str(index + 1), "+on", str(path), str(out)],
        capture_output=True,
        check=False,
    )
    if path.name in DCMTK_REFUSES:
        assert done.returncode != 0
        return
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        expected = np.asarray(image)
    assert frame.shape == expected.shape
    assert np.array_equal(frame, expected)


def _with_garbage_above(stored: np.ndarray, bits_stored: int, garbage: np.ndarray) -> np.ndarray:
    """Stored values in their low `bits_stored` bits, `garbage` in the bits above (overlays
    and other writers' leftovers: PS3.5 8.1.1 says they are not part of the value)."""
    unsigned = stored.view(np.uint16) & np.uint16((1 << bits_stored) - 1)
    dirty = unsigned | (garbage.astype(np.uint16) << np.uint16(bits_stored))
    return dirty.view(stored.dtype)


def _dirty(ds: pydicom.Dataset, stored: np.ndarray) -> pydicom.Dataset:
    """`ds` with these stored words (pydicom's set_pixel_data refuses out-of-range values)."""
    ds.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    return ds


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("deferred", [False, True], ids=["in-memory", "read-from-source"])
def test_bits_above_bits_stored_are_ignored(signed: bool, deferred: bool) -> None:
    """12 bits stored in 16 with garbage in the top 4: cleared (unsigned) or replaced by the
    sign bit (signed), as pydicom does, so the image and its robust window are unchanged."""
    size = 768 if deferred else 64  # 768x768x2 bytes is past the size read with the header
    rng = np.random.default_rng(1)
    if signed:
        clean = rng.integers(-2048, 2048, (size, size)).astype(np.int16)
    else:
        clean = rng.integers(0, 4096, (size, size)).astype(np.uint16)
    dirty = _with_garbage_above(clean, 12, rng.integers(0, 16, (size, size)))
    assert not np.array_equal(dirty, clean)
    expected = render_bytes(part10(synthetic(clean, bits_stored=12)), PNG)
    data = part10(_dirty(synthetic(clean, bits_stored=12), dirty))
    image = render_bytes(data, PNG)
    assert image.window == expected.window
    assert np.array_equal(image.pixels, expected.pixels)
    # The same samples as pydicom's decoder gives for the dirty file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = opener(data)
        ds = read_dataset(source)
        frame = decode_frame(ds, check_header(ds), 0, source)
    assert np.array_equal(frame, clean)
    assert np.array_equal(frame, pixel_array(pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))))


def test_garbage_bits_in_a_windowed_dataset() -> None:
    """A declared window on 10 of 16 bits: garbage above bit 9 must not saturate the image."""
    ramp = np.tile(np.arange(1024, dtype=np.uint16), (8, 1))
    dirty = ramp | np.uint16(0xFC00)  # every bit above Bits Stored set
    attrs: dict[str, Any] = {"WindowCenter": 512, "WindowWidth": 1024}
    clean_image = render_dataset(synthetic(ramp, bits_stored=10, **attrs), PNG)
    dirty_image = render_dataset(_dirty(synthetic(ramp, bits_stored=10, **attrs), dirty), PNG)
    assert np.array_equal(dirty_image.pixels, clean_image.pixels)
    assert dirty_image.pixels[0, 0] == 0 and dirty_image.pixels[0, -1] == 255


def test_planar_rgb_is_interleaved() -> None:
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 10, 20, 30
    ds = synthetic(pixels, "RGB")
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(pixels.transpose(2, 0, 1)).tobytes()
    image = render_dataset(ds, PNG)
    assert image.pixels.shape == (4, 6, 3)
    assert tuple(image.pixels[2, 3]) == (10, 20, 30)
    assert np.array_equal(image.pixels, pixel_array(ds))


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",  # int16
        "MR_small_bigendian.dcm",  # big endian words
        "examples_palette.dcm",  # 8-bit palette indices
        "examples_rgb_color.dcm",  # interleaved RGB
        "SC_rgb_jpeg_dcmd.dcm",  # RGB, implicit VR
        "SC_rgb_small_odd.dcm",  # 3x3 RGB: odd length, padded
        "MR_small_padded.dcm",
    ],
)
@pytest.mark.filterwarnings("ignore:The pixel data is .* excess padding:UserWarning")  # pydicom's
def test_native_frames_skip_the_decoder(name: str) -> None:
    """The direct read applies to the common native layouts (and equals pixel_array)."""
    data = (PYDICOM_TEST_FILES / name).read_bytes()
    source = opener(data)
    ds = read_dataset(source)
    header = check_header(ds)
    frame = _native_frame(ds, header, header.frames // 2, source)
    assert frame is not None
    assert frame.dtype.isnative
    expected = pixel_array(pydicom.dcmread(PYDICOM_TEST_FILES / name), index=header.frames // 2)
    assert np.array_equal(frame, expected)
