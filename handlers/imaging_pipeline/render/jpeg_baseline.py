"""8-bit JPEG Baseline frames decoded by Pillow's libjpeg-turbo, the way dcmtk decodes them.

libjpeg-turbo's default (islow) inverse DCT, fancy upsampling and YCbCr->RGB tables are those
of the IJG libjpeg that dcmtk ships, so the samples are dcmtk's to the bit (and what viewers
built on libjpeg-turbo show); pydicom's default plugin (pylibjpeg-libjpeg) rounds some pixels
one to three levels apart and takes about three times the CPU. Like dcmtk, the colour
transform follows the Photometric Interpretation, not the JPEG's own markers: YBR_FULL and
YBR_FULL_422 are converted to RGB, RGB is returned as stored. Where libjpeg would guess the
stream's colour space differently from the Photometric Interpretation (an Adobe marker or
component IDs saying RGB on a YBR image), or anything else is unusual, `None` sends the frame
to pydicom's decoders.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, JpegImagePlugin

from imaging_pipeline.render.header import GREYSCALE

STORED_AS_YCBCR = frozenset({"YBR_FULL", "YBR_FULL_422"})
_RGB_IDS = (ord("R"), ord("G"), ord("B"))


def _libjpeg_guesses_rgb(image: JpegImagePlugin.JpegImageFile) -> bool:
    """libjpeg's default for three components (jdapimin.c): JFIF means YCbCr, then the Adobe
    marker's transform decides, then component IDs 'R', 'G', 'B' mean RGB; else YCbCr."""
    if "jfif" in image.info:
        return False
    if "adobe_transform" in image.info:
        return image.info["adobe_transform"] == 0
    return tuple(layer[0] for layer in image.layer) == _RGB_IDS


def decode(fragment: bytes, photometric: str, rows: int, columns: int) -> np.ndarray | None:
    """One frame's JPEG stream as (rows, columns) or (rows, columns, 3) uint8; None when this
    path does not apply and pydicom's decoders should decide."""
    try:
        image = Image.open(io.BytesIO(fragment), formats=("JPEG",))
    except Exception:  # not a stream Pillow recognises: pydicom's decoders report it
        return None
    if not isinstance(image, JpegImagePlugin.JpegImageFile) or image.size != (columns, rows):
        return None
    if photometric in GREYSCALE:
        if image.mode != "L":
            return None
    elif image.mode != "RGB":
        return None
    elif photometric == "RGB":
        if not _libjpeg_guesses_rgb(image):
            image.draft("YCbCr", image.size)  # no colour transform: the samples as stored
    elif photometric not in STORED_AS_YCBCR or _libjpeg_guesses_rgb(image):
        return None
    try:
        image.load()
    except Exception:  # truncated or corrupt: pydicom's decoders make the diagnosis
        return None
    return np.asarray(image)
