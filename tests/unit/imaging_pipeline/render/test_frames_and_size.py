"""One representative frame, decoded alone; bounded output size; encoding."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from imaging_pipeline.render import (
    RejectReason,
    RenderOptions,
    RenderRejected,
    render_bytes,
    render_dataset,
    render_file,
)
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import RLELossless

from tests.support.render_fixtures import decoded, part10, synthetic

PNG = RenderOptions(format="png", max_size=4096)


def _numbered_frames(count: int, size: int = 32) -> np.ndarray:
    """Frame k is uniformly 10 * k, so the rendered grey level identifies the frame."""
    return np.stack([np.full((size, size), 10 * k, dtype=np.uint16) for k in range(count)])


def _frames_dataset(count: int) -> Dataset:
    return synthetic(
        _numbered_frames(count),
        WindowCenter=0,
        WindowWidth=2 * 10 * count,
        VOILUTFunction="LINEAR_EXACT",
    )


def _which_frame(pixels: np.ndarray, count: int) -> int:
    value = float(pixels.mean()) / 255 * (2 * 10 * count) - 10 * count
    return round(value / 10)


@pytest.mark.parametrize(("count", "middle"), [(1, 0), (2, 1), (5, 2), (30, 15)])
def test_default_frame_is_the_middle_one(count: int, middle: int) -> None:
    image = render_dataset(_frames_dataset(count), PNG)
    assert (image.frames, image.frame) == (count, middle)
    assert _which_frame(image.pixels, count) == middle


def test_requested_frame_is_rendered() -> None:
    data = part10(_frames_dataset(7))
    for frame in (0, 3, 6):
        image = render_bytes(data, RenderOptions(frame=frame, format="png"))
        assert image.frame == frame and _which_frame(image.pixels, 7) == frame


def test_frame_past_the_end_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="frame 7"):
        render_dataset(_frames_dataset(7), RenderOptions(frame=7))


def test_only_the_rendered_frame_is_decoded() -> None:
    """Frame 0's compressed stream is garbage: any other frame must still render."""
    ds = synthetic(_numbered_frames(3))
    ds.compress(RLELossless)
    frames = list(generate_frames(ds.PixelData, number_of_frames=3))
    frames[0] = b"\xff" * len(frames[0])
    ds.PixelData = encapsulate(frames)
    assert render_dataset(ds, RenderOptions(frame=2)).frame == 2
    with pytest.raises(RenderRejected) as info:
        render_dataset(ds, RenderOptions(frame=0))
    assert info.value.reason is RejectReason.CORRUPT_PIXEL_DATA


def test_memory_is_one_frame_not_the_whole_series() -> None:
    """100 frames of 512x512 int16 (50 MiB): rendering allocates about one frame's worth."""
    rng = np.random.default_rng(0)
    ds = synthetic(rng.integers(0, 4000, (100, 512, 512), dtype=np.uint16), bits_stored=12)
    render_dataset(ds)  # warm caches (decoder plugins, Pillow codecs)
    tracemalloc.start()
    try:
        render_dataset(ds)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    series_bytes = 100 * 512 * 512 * 2
    # One frame plus 64K-entry float32 tables and the encoded output: a few MiB, where
    # decoding the series would allocate 50 MiB.
    assert peak < series_bytes / 10, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(
    ("rows", "columns", "max_size", "expected"),
    [
        (3000, 1000, 1024, (341, 1024)),  # (width, height): portrait keeps its shape
        (1000, 3000, 1024, (1024, 341)),
        (2048, 2048, 1024, (1024, 1024)),
        (300, 200, 1024, (200, 300)),  # never upscaled
        (512, 512, 256, (256, 256)),
        (1, 5000, 1024, (1024, 1)),  # a line stays at least one pixel high
    ],
)
def test_downscaling_keeps_the_aspect_ratio(
    rows: int, columns: int, max_size: int, expected: tuple[int, int]
) -> None:
    pixels = np.zeros((rows, columns), dtype=np.uint8)
    pixels[:, : columns // 2] = 255  # left half white
    image = render_dataset(
        synthetic(pixels, WindowCenter=127.5, WindowWidth=256),
        RenderOptions(max_size=max_size, format="png"),
    )
    assert (image.width, image.height) == expected
    assert image.pixels.shape == (expected[1], expected[0])
    assert decoded(image.data).shape == image.pixels.shape
    if expected[0] >= 8:  # content geometry survives: left half white, right half black
        assert image.pixels[:, : expected[0] // 4].min() > 200
        assert image.pixels[:, -expected[0] // 4 :].max() < 55


def test_non_square_pixels_are_shown_with_their_physical_shape() -> None:
    pixels = np.zeros((100, 100), dtype=np.uint8)
    wide = render_dataset(synthetic(pixels, PixelAspectRatio=[1, 2]), PNG)  # 1 high : 2 wide
    assert (wide.width, wide.height) == (200, 100)
    spaced = render_dataset(synthetic(pixels, PixelSpacing=[0.5, 0.25]), PNG)  # rows further
    assert (spaced.width, spaced.height) == (100, 200)
    bounded = render_dataset(synthetic(pixels, PixelAspectRatio=[1, 2]), RenderOptions(max_size=50))
    assert (bounded.width, bounded.height) == (50, 25)


def test_formats_and_quality() -> None:
    rng = np.random.default_rng(3)
    ds = synthetic(rng.integers(0, 4096, (256, 256), dtype=np.uint16), bits_stored=12)
    jpeg = render_dataset(ds)
    png = render_dataset(ds, RenderOptions(format="png"))
    low = render_dataset(ds, RenderOptions(jpeg_quality=30))
    assert jpeg.media_type == "image/jpeg" and jpeg.data[:3] == b"\xff\xd8\xff"
    assert png.media_type == "image/png" and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(low.data) < len(jpeg.data)
    assert np.array_equal(decoded(png.data), png.pixels)
    assert np.abs(decoded(jpeg.data).astype(int) - jpeg.pixels).mean() < 8


def test_pixels_are_read_only() -> None:
    image = render_dataset(synthetic(np.zeros((8, 8), dtype=np.uint8)))
    with pytest.raises(ValueError):
        image.pixels[0, 0] = 1


@pytest.mark.parametrize(
    "kwargs",
    [{"max_size": 0}, {"format": "gif"}, {"frame": -1}, {"jpeg_quality": 0}, {"jpeg_quality": 101}],
)
def test_options_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RenderOptions(**kwargs)  # type: ignore[arg-type]


def test_per_pixel_path_works_in_blocks() -> None:
    """32-bit data is windowed per pixel; float32 temporaries are block-sized, so the peak is
    about the decoded frame plus 8-bit copies, not several float copies of the frame."""
    rng = np.random.default_rng(0)
    stored = rng.integers(-1000, 3000, (2048, 2048)).astype(np.int32)
    ds = synthetic(stored, RescaleSlope=0.5, RescaleIntercept=-100)
    render_dataset(ds)  # warm caches
    tracemalloc.start()
    try:
        image = render_dataset(ds, RenderOptions(max_size=2048, format="png"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * stored.nbytes, f"peak {peak / 2**20:.1f} MiB"  # one float copy: 2x
    window = image.window
    assert window is not None
    low = window[0] - window[1] / 2
    expected = np.clip((stored[0, :16] * 0.5 - 100 - low) / window[1], 0, 1) * 255
    assert np.abs(image.pixels[0, :16] - expected).max() <= 1


def _series(frames: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 4096, (frames, 256, 256), dtype=np.uint16)
    return synthetic(pixels, bits_stored=12)


def test_bytes_and_files_read_only_the_rendered_frame(tmp_path: Path) -> None:
    """A 100-frame native series (12.5 MiB): from bytes or a file, only the header and one
    frame are read and decoded, and the result is the one the parsed dataset gives."""
    ds = _series(100)
    data = part10(ds)
    path = tmp_path / "series.dcm"
    path.write_bytes(data)
    reference = render_dataset(ds, RenderOptions(frame=77, format="png"))
    for render in (
        lambda: render_bytes(data, RenderOptions(frame=77, format="png")),
        lambda: render_file(path, RenderOptions(frame=77, format="png")),
    ):
        render()  # warm caches
        tracemalloc.start()
        try:
            image = render()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert np.array_equal(image.pixels, reference.pixels)
        assert image.window == reference.window and image.frame == 77
        assert peak < len(data) / 10, f"peak {peak / 2**20:.1f} MiB"


def test_encapsulated_frames_are_read_alone_from_bytes_and_files(tmp_path: Path) -> None:
    ds = _series(24, seed=5)
    ds.compress(RLELossless)
    frames = list(generate_frames(ds.PixelData, number_of_frames=24))
    frames[0] = b"\xff" * len(frames[0])  # frame 0 is garbage; the others must not care
    ds.PixelData = encapsulate(frames)
    data = part10(ds)
    assert len(data) > 2**20  # large enough for the pixel data to stay in the source
    path = tmp_path / "rle.dcm"
    path.write_bytes(data)
    for frame in (5, 12, 23):
        options = RenderOptions(frame=frame, format="png")
        expected = render_dataset(ds, options).pixels
        assert np.array_equal(render_bytes(data, options).pixels, expected)
        assert np.array_equal(render_file(path, options).pixels, expected)
    for render in (
        lambda: render_bytes(data, RenderOptions(frame=0)),
        lambda: render_file(path, RenderOptions(frame=0)),
    ):
        with pytest.raises(RenderRejected) as info:
            render()
        assert info.value.reason is RejectReason.CORRUPT_PIXEL_DATA


def test_truncated_large_native_series_is_corrupt_not_a_crash() -> None:
    data = part10(_series(40))[:-100_000]  # the last frames are cut off
    assert render_bytes(data, RenderOptions(frame=0)).frame == 0
    with pytest.raises(RenderRejected) as info:
        render_bytes(data, RenderOptions(frame=39))
    assert info.value.reason is RejectReason.TRUNCATED
