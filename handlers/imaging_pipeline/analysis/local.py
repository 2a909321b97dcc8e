"""Offline analyzer for the demo and the tests: same findings schema as Cloud Vision.

It looks at the rendered 8-bit pixels the rendering core hands over (no re-decode):
- burned-in text through Tesseract OCR (Debian's `tesseract-ocr`, via pytesseract);
- a blank-image check (almost every pixel at one grey level);
- an exposure check on the central region (background air at the edges is normal in CT/MR).

The deployed function uses Cloud Vision: the Cloud Functions runtime has no Tesseract binary.
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING, Any

from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.settings import LocalAnalyzerSettings

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from imaging_pipeline.render import RenderedImage

ANALYZER_VERSION = "1.0"
BLANK_TOLERANCE = 4  # grey levels around the median that still count as "the same"
BLANK_MIN_FRACTION = 0.98
EXPOSURE_MIN_FRACTION = 0.6  # of the central region clipped to black or white
_WORD = re.compile(r"[A-Za-z0-9]{2,}")


@functools.cache
def tesseract_version() -> str:
    import pytesseract

    return str(pytesseract.get_tesseract_version())


def _grey(pixels: NDArray[Any]) -> NDArray[np.uint8]:
    import numpy as np

    if pixels.ndim == 3:
        # ITU-R BT.601 luma, in integers: no float64 copy of the whole image.
        weights = np.array([77, 150, 29], dtype=np.uint32)
        return ((pixels[..., :3].astype(np.uint32) @ weights) >> 8).astype(np.uint8)
    return pixels.astype(np.uint8, copy=False)


def blank_finding(grey: NDArray[np.uint8]) -> Finding | None:
    import numpy as np

    median = int(np.median(grey))
    near = np.count_nonzero(np.abs(grey.astype(np.int16) - median) <= BLANK_TOLERANCE)
    fraction = near / grey.size
    if fraction >= BLANK_MIN_FRACTION:
        return Finding("blank_image", "blank or uniform image", float(fraction))
    return None


def exposure_finding(grey: NDArray[np.uint8]) -> Finding | None:
    import numpy as np

    h, w = grey.shape
    centre = grey[h // 4 : h - h // 4 or h, w // 4 : w - w // 4 or w]
    dark = np.count_nonzero(centre <= 5) / centre.size
    bright = np.count_nonzero(centre >= 250) / centre.size
    if bright >= EXPOSURE_MIN_FRACTION:
        return Finding("exposure", "overexposed", float(bright))
    if dark >= EXPOSURE_MIN_FRACTION:
        return Finding("exposure", "underexposed", float(dark))
    return None


def text_finding(grey: NDArray[np.uint8], min_confidence: int, timeout_s: float) -> Finding | None:
    import pytesseract
    from PIL import Image

    # Tesseract's OpenMP threads fight over the function's single vCPU; one is faster.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    data = pytesseract.image_to_data(
        Image.fromarray(grey),
        config="--psm 11",
        output_type=pytesseract.Output.DICT,
        timeout=timeout_s,
    )
    h, w = grey.shape
    words: list[str] = []
    confidences: list[float] = []
    x0, y0, x1, y1 = w, h, 0, 0
    for i, text in enumerate(data["text"]):
        conf = float(data["conf"][i])
        if conf < min_confidence or not _WORD.search(text or ""):
            continue
        words.append(text.strip().lower())
        confidences.append(conf)
        left, top = int(data["left"][i]), int(data["top"][i])
        x0, y0 = min(x0, left), min(y0, top)
        x1 = max(x1, left + int(data["width"][i]))
        y1 = max(y1, top + int(data["height"][i]))
    # One short high-confidence "word" is what OCR makes of texture; real annotations have more.
    if len(words) < 2:
        return None
    score = sum(confidences) / len(confidences) / 100.0
    return Finding(
        "burned_in_text",
        f"burned-in text ({len(words)} words)",
        score,
        box=(x0 / w, y0 / h, x1 / w, y1 / h),
        words=tuple(words),
    )


class LocalAnalyzer:
    name = "imaging-pipeline-local-analyzer"

    def __init__(self, settings: LocalAnalyzerSettings | None = None) -> None:
        self.settings = settings or LocalAnalyzerSettings()

    @functools.cached_property
    def version(self) -> str:
        return f"{ANALYZER_VERSION}+tesseract-{tesseract_version()}"

    def analyze(self, image: RenderedImage) -> list[Finding]:
        grey = _grey(image.pixels)
        blank = blank_finding(grey)
        if blank is not None:
            return [blank]  # nothing else to see, and OCR on a flat image is wasted time
        findings = [f for f in (exposure_finding(grey),) if f is not None]
        text = text_finding(
            grey, self.settings.ocr_min_confidence, self.settings.ocr_timeout_seconds
        )
        if text is not None:
            findings.append(text)
        return findings
