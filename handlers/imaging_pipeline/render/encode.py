"""Encoding the final 8-bit image."""

from __future__ import annotations

import io

from PIL import Image

from imaging_pipeline.render.options import RenderOptions


def encode(image: Image.Image, options: RenderOptions) -> bytes:
    buffer = io.BytesIO()
    if options.format == "png":
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=options.jpeg_quality)
    return buffer.getvalue()
