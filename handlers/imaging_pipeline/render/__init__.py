"""DICOM rendering core: one instance in, one bounded 8-bit JPEG/PNG out, or a typed rejection.

Order of operations (PS3.3 C.11, C.7.6.3): decode one frame -> modality transform (rescale or
Modality LUT) -> VOI (VOI LUT, window, or a robust percentile window) -> presentation
(MONOCHROME1 / INVERSE) -> 8 bits; colour to RGB; downscale; encode.
"""

from imaging_pipeline.render.api import render_bytes, render_dataset, render_file
from imaging_pipeline.render.errors import RejectReason, RenderRejected
from imaging_pipeline.render.options import RenderedImage, RenderOptions
from imaging_pipeline.render.sop_classes import NON_IMAGE_SOP_CLASSES, is_image_sop_class

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
