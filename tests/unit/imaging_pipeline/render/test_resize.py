"""The radiograph downscale: the reducing gap triggers, and nothing visible is lost by it."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from imaging_pipeline.render import RenderOptions, render_dataset
from imaging_pipeline.render.resize import REDUCING_GAP, resize
from PIL import Image

from tests.support.render_fixtures import synthetic


@functools.cache
def _radiograph(size: int) -> Image.Image:
    """A 12-bit projection radiograph (body, ribs, quantum noise) rendered by the pipeline at
    full size: the 8-bit image the downscale receives."""
    rng = np.random.default_rng(42)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    signal = 3000.0 - 1500.0 * np.exp(-((x / 0.3) ** 2 + (y / 0.4) ** 2))
    signal -= 800.0 * (np.abs(np.sin(24 * y)) * (np.abs(x) < 0.25))
    signal += rng.normal(0, 20, signal.shape)
    ds = synthetic(
        np.clip(signal, 0, 4095).astype(np.uint16),
        bits_stored=12,
        WindowCenter=2200,
        WindowWidth=2400,
    )
    rendered = render_dataset(ds, RenderOptions(max_size=8192, format="png"))
    return Image.fromarray(np.asarray(rendered.pixels))


def _correlation(a: Image.Image, b: Image.Image) -> float:
    return float(
        np.corrcoef(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())[0, 1]
    )


@pytest.mark.parametrize(("source", "target"), [(3000, 1024), (2048, 1024), (1536, 1024)])
def test_downscale_agrees_with_plain_lanczos(source: int, target: int) -> None:
    """The output before this change was plain Lanczos (the old 3.0 gap never triggered at
    these factors); the box pre-reduction must not be visible: correlation >= 0.9999."""
    image = _radiograph(source)
    ours = resize(image, (target, target))
    plain = image.resize((target, target), Image.Resampling.LANCZOS)
    assert ours.size == plain.size == (target, target)
    assert _correlation(ours, plain) >= 0.9999


def test_the_gap_triggers_on_a_typical_radiograph_reduction() -> None:
    """3000 -> 1024 (2.93x): Pillow first box-reduces by 2, then Lanczos does 1.46x. The output
    is exactly that two-step result, not single-pass Lanczos (which the 3.0 gap produced)."""
    image = _radiograph(3000)
    factor = int(3000 / 1024 / REDUCING_GAP)
    assert factor == 2
    two_step = image.reduce(factor).resize((1024, 1024), Image.Resampling.LANCZOS)
    ours = resize(image, (1024, 1024))
    assert np.array_equal(np.asarray(ours), np.asarray(two_step))
    plain = image.resize((1024, 1024), Image.Resampling.LANCZOS)
    assert not np.array_equal(np.asarray(ours), np.asarray(plain))
