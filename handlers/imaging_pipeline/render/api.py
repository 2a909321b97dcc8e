"""Render one DICOM instance the way a radiology viewer would: pure functions, no I/O
beyond reading the file `render_file` is given."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from imaging_pipeline.render.colour import render_colour
from imaging_pipeline.render.decode import Opener, decode_frame, opener, read_dataset
from imaging_pipeline.render.encode import encode
from imaging_pipeline.render.frame_attributes import display_attributes
from imaging_pipeline.render.greyscale import render_greyscale
from imaging_pipeline.render.header import check_header, choose_frame
from imaging_pipeline.render.options import MEDIA_TYPES, RenderedImage, RenderOptions
from imaging_pipeline.render.resize import output_size, pixel_aspect, resize

_DEFAULT = RenderOptions()


def _render(ds: Dataset, options: RenderOptions, source: Opener | None) -> RenderedImage:
    header = check_header(ds)
    index = choose_frame(header, options.frame)
    frame = decode_frame(ds, header, index, source)
    attrs = display_attributes(ds, index)
    window: tuple[float, float] | None
    if header.greyscale:
        pixels, window = render_greyscale(frame, attrs, header.photometric, header.little_endian)
    else:
        pixels, window = render_colour(frame, ds, header.photometric), None
    del frame  # the decoded frame can be the largest array here; free it before resizing
    size = output_size(header.rows, header.columns, options.max_size, pixel_aspect(attrs))
    image = resize(Image.fromarray(pixels), size)
    # Not resized: the image holds the same pixels as the array, no need to copy them back.
    final = np.ascontiguousarray(pixels) if image.size == pixels.shape[1::-1] else np.asarray(image)
    final.setflags(write=False)
    return RenderedImage(
        data=encode(image, options),
        media_type=MEDIA_TYPES[options.format],
        width=image.width,
        height=image.height,
        rows=header.rows,
        columns=header.columns,
        frames=header.frames,
        frame=index,
        photometric=header.photometric,
        window=window,
        pixels=final,
    )


# pydicom's warnings about odd files are noise to callers; it also sends them to the 'pydicom'
# logger, and those name attributes and byte counts, never patient values (only pixel-module
# elements are ever decoded: tests/unit/test_render_rejections.py). One filter, installed once
# at import and never changed: `warnings.catch_warnings()` per call would swap the process-wide
# filter list under the feet of concurrent requests (it is not thread-safe).
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


def _quietly(source: Dataset | bytes | Path, options: RenderOptions) -> RenderedImage:
    if isinstance(source, Dataset):
        return _render(source, options, None)
    open_source = opener(source)
    return _render(read_dataset(open_source), options, open_source)


def render_dataset(ds: Dataset, options: RenderOptions = _DEFAULT) -> RenderedImage:
    """Render a parsed dataset (its pixel data must be loaded or readable)."""
    return _quietly(ds, options)


def render_bytes(data: bytes, options: RenderOptions = _DEFAULT) -> RenderedImage:
    """Render DICOM Part 10 bytes, as WADO-RS returns them."""
    return _quietly(data if isinstance(data, bytes) else bytes(data), options)


def render_file(path: str | Path, options: RenderOptions = _DEFAULT) -> RenderedImage:
    """Render a DICOM Part 10 file; OSError (missing, unreadable) propagates."""
    return _quietly(Path(path), options)
