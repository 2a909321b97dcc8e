"""DICOM rendering core: one instance in, one bounded 8-bit JPEG/PNG out, or a typed rejection.

Order of operations (PS3.3 C.11, C.7.6.3): decode one frame -> modality transform (rescale or
Modality LUT) -> VOI (VOI LUT, window, or a robust percentile window) -> presentation
(MONOCHROME1 / INVERSE) -> 8 bits; colour to RGB; downscale; encode.

The SOP class filter and the rejection types import only the standard library; the renderer
(numpy, pydicom, Pillow) loads on first use, so the function's event filter stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from imaging_pipeline.render.errors import RejectReason, RenderRejected
from imaging_pipeline.render.sop_classes import NON_IMAGE_SOP_CLASSES, is_image_sop_class

if TYPE_CHECKING:
    from imaging_pipeline.render.api import render_bytes, render_dataset, render_file
    from imaging_pipeline.render.options import RenderedImage, RenderOptions

_LAZY = {
    "render_bytes": "api",
    "render_dataset": "api",
    "render_file": "api",
    "RenderOptions": "options",
    "RenderedImage": "options",
}

__all__ = [
    "NON_IMAGE_SOP_CLASSES",
    "RejectReason",
    "RenderOptions",
    "RenderRejected",
    "RenderedImage",
    "is_image_sop_class",
    "render_bytes",
    "render_dataset",
    "render_file",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
