"""What the caller asks for (`RenderOptions`) and what it gets back (`RenderedImage`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ImageFormat = Literal["jpeg", "png"]
MEDIA_TYPES: dict[str, str] = {"jpeg": "image/jpeg", "png": "image/png"}


@dataclass(frozen=True)
class RenderOptions:
    max_size: int = 1024  # longest output side in pixels; never upscaled beyond the source
    format: ImageFormat = "jpeg"
    frame: int | None = None  # 0-based; None renders the middle frame
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if not 1 <= self.max_size <= 65535:
            raise ValueError(f"max_size must be 1..65535, got {self.max_size}")
        if self.format not in MEDIA_TYPES:
            raise ValueError(f"format must be one of {sorted(MEDIA_TYPES)}, got {self.format!r}")
        if self.frame is not None and self.frame < 0:
            raise ValueError(f"frame must be >= 0, got {self.frame}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 1..100, got {self.jpeg_quality}")


# eq=False: the ndarray field has no boolean equality; compare fields explicitly instead.
@dataclass(frozen=True, eq=False)
class RenderedImage:
    data: bytes  # encoded image
    media_type: str  # "image/jpeg" | "image/png"
    width: int  # output size
    height: int
    rows: int  # source geometry and the frame rendered (0-based)
    columns: int
    frames: int
    frame: int
    photometric: str  # source PhotometricInterpretation
    window: tuple[float, float] | None  # (centre, width) applied; None for colour
    pixels: np.ndarray  # final uint8 image, HxW (grey) or HxWx3 (RGB), read-only
