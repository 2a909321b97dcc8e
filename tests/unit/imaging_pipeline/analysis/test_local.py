"""The offline analyzer: burned-in text (Tesseract), blank images, exposure; colour input."""

from __future__ import annotations

import numpy as np
import pytest
from imaging_pipeline.analysis.local import LocalAnalyzer
from imaging_pipeline.render import RenderedImage
from PIL import Image, ImageDraw, ImageFont


def image(pixels: np.ndarray) -> RenderedImage:
    h, w = pixels.shape[:2]
    return RenderedImage(
        data=b"",
        media_type="image/png",
        width=w,
        height=h,
        rows=h,
        columns=w,
        frames=1,
        frame=0,
        photometric="RGB" if pixels.ndim == 3 else "MONOCHROME2",
        window=None,
        pixels=pixels,
    )


def anatomy(size: int = 400, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    body = np.exp(-(((x - size / 2) / (size / 4)) ** 2 + ((y - size / 2) / (size / 3)) ** 2))
    noisy = 60 + 140 * body + np.random.default_rng(seed).normal(0, 8, body.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def with_text(pixels: np.ndarray, text: str) -> np.ndarray:
    canvas = Image.fromarray(pixels)
    ImageDraw.Draw(canvas).text((12, 12), text, fill=255, font=ImageFont.load_default(size=22))
    return np.asarray(canvas)


@pytest.fixture(scope="module")
def analyzer() -> LocalAnalyzer:
    return LocalAnalyzer()


def test_plain_anatomy_has_no_findings(analyzer: LocalAnalyzer) -> None:
    assert analyzer.analyze(image(anatomy())) == []


def test_burned_in_text_is_found_with_its_words(analyzer: LocalAnalyzer) -> None:
    [finding] = analyzer.analyze(image(with_text(anatomy(), "PORTABLE AP CHEST")))
    assert finding.kind == "burned_in_text"
    assert finding.score > 0.7
    assert set(finding.words) >= {"portable", "chest"}
    assert finding.box is not None and finding.box[1] < 0.2  # top of the image
    assert "portable" not in str(finding.as_dict())  # words never leave the process


def test_text_in_a_colour_image(analyzer: LocalAnalyzer) -> None:
    grey = with_text(anatomy(), "LEFT LATERAL VIEW")
    rgb = np.stack([grey, grey // 2, grey], axis=-1)
    assert [f.kind for f in analyzer.analyze(image(rgb))] == ["burned_in_text"]


@pytest.mark.parametrize("level", [0, 128, 255])
def test_uniform_images_are_blank(analyzer: LocalAnalyzer, level: int) -> None:
    pixels = np.full((300, 300), level, np.uint8)
    pixels[0:3, 0:3] = 255 - level  # a few stray pixels do not make an image
    [finding] = analyzer.analyze(image(pixels))
    assert finding.kind == "blank_image" and finding.score > 0.98


@pytest.mark.parametrize(("value", "description"), [(255, "overexposed"), (0, "underexposed")])
def test_clipped_centre_is_an_exposure_finding(
    analyzer: LocalAnalyzer, value: int, description: str
) -> None:
    pixels = anatomy()
    pixels[100:300, 100:300] = value
    findings = analyzer.analyze(image(pixels))
    assert [(f.kind, f.description) for f in findings] == [("exposure", description)]


def test_version_names_tesseract(analyzer: LocalAnalyzer) -> None:
    assert analyzer.version.startswith("1.0+tesseract-")
