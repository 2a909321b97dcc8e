"""Synthetic DICOM studies for the demo and the tests: no PHI, small, deterministic.

Every instance is generated in code (pixel data included) with fictitious patient details, so
the repository carries no image data. UIDs derive from a seed: the same seed gives the same
UIDs, which makes `imaging demo` and resumable ingest reproducible. The set covers the cases the
pipeline must render correctly: CT in Hounsfield units (rescale slope/intercept, VOI window), MR
(16-bit), CR (MONOCHROME1, which must be inverted), a secondary capture with burned-in text,
a colour ultrasound image (RGB) and a blank image.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
)

# The CT series and the helpers live in the product (imaging smoke stores one such slice).
from imaging_cli.synthetic_instance import (
    STUDY_DATE,
    SyntheticInstance,
    base_dataset,
    ct_series,
    disc,
    set_pixels,
)

__all__ = [
    "BURNED_IN_TEXT",
    "SAMPLE_FILES",
    "STUDY_DATE",
    "SyntheticInstance",
    "blank_image",
    "burned_in_text_image",
    "cr_image",
    "ct_series",
    "mr_image",
    "sample_files",
    "study_set",
    "us_color_image",
    "write_instances",
]

# pydicom's bundled test files used by the demo: public, small, several transfer syntaxes.
# rtplan.dcm is deliberately not an image: the processor must skip it.
SAMPLE_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "SC_rgb_rle.dcm",
    "examples_palette.dcm",
    "rtplan.dcm",
)
BURNED_IN_TEXT = "SYNTHETIC PATIENT 1234"


def mr_image(seed: str = "demo", size: int = 64) -> SyntheticInstance:
    """A 16-bit MR slice with a smooth gradient and a bright lesion."""
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = (200 + 8 * xx + 4 * yy).astype(np.uint16)
    pixels[~disc(size, size * 0.45)] = 0
    pixels[disc(size, size * 0.1, (size * 0.6, size * 0.4))] = 2400
    ds = base_dataset(seed, "mr", "t2", 1, MRImageStorage, "MR", "Synthetic MR T2")
    set_pixels(ds, pixels, "MONOCHROME2")
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelSpacing = [1.0, 1.0]
    return SyntheticInstance("mr-01.dcm", ds)


def cr_image(seed: str = "demo", size: int = 96) -> SyntheticInstance:
    """A chest-like CR in MONOCHROME1 (low values display white), which renderers must invert."""
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = np.full((size, size), 3000, dtype=np.uint16)  # air: dark on display
    body = (np.abs(xx - size / 2) < size * 0.38) & (yy > size * 0.1)
    pixels[body] = 1200
    for side in (-1, 1):  # two lung fields
        lung = (
            (xx - size / 2 - side * size * 0.17) ** 2 / (size * 0.13) ** 2
            + (yy - size * 0.5) ** 2 / (size * 0.3) ** 2
        ) <= 1
        pixels[lung] = 2500
    ds = base_dataset(
        seed, "cr", "chest", 1, ComputedRadiographyImageStorage, "CR", "Synthetic chest"
    )
    set_pixels(ds, pixels, "MONOCHROME1")
    ds.BitsStored, ds.HighBit = 12, 11
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    return SyntheticInstance("cr-01.dcm", ds)


def burned_in_text_image(seed: str = "demo", text: str = BURNED_IN_TEXT) -> SyntheticInstance:
    """A secondary capture whose pixels carry text, as scanned or screen-captured images do."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (512, 160), color=0)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    draw.text((24, 56), text, fill=255, font=font)
    ds = base_dataset(
        seed, "sc", "capture", 1, SecondaryCaptureImageStorage, "OT", "Synthetic screen capture"
    )
    set_pixels(ds, np.asarray(image, dtype=np.uint8), "MONOCHROME2")
    ds.ConversionType = "WSD"
    ds.BurnedInAnnotation = "YES"
    return SyntheticInstance("sc-burned-in-text.dcm", ds)


def us_color_image(seed: str = "demo", size: int = 96) -> SyntheticInstance:
    """An RGB ultrasound frame: grey speckle sector with a colour-Doppler patch."""
    rng = np.random.default_rng(7)
    grey = (rng.random((size, size)) * 120).astype(np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    sector = (np.abs(np.arctan2(xx - size / 2, yy + 1)) < 0.6) & (yy < size * 0.95)
    grey[~sector] = 0
    rgb = np.stack([grey, grey, grey], axis=-1)
    patch = disc(size, size * 0.1, (size * 0.5, size * 0.5)) & sector
    rgb[patch] = (200, 30, 30)
    ds = base_dataset(seed, "us", "doppler", 1, UltrasoundImageStorage, "US", "Synthetic Doppler")
    set_pixels(ds, rgb, "RGB")
    return SyntheticInstance("us-color-01.dcm", ds)


def blank_image(seed: str = "demo", size: int = 64) -> SyntheticInstance:
    """A DX with no signal (a failed exposure): the blank-image rule flags it."""
    ds = base_dataset(
        seed,
        "dx",
        "blank",
        1,
        DigitalXRayImageStorageForPresentation,
        "DX",
        "Synthetic blank exposure",
    )
    set_pixels(ds, np.full((size, size), 512, dtype=np.uint16), "MONOCHROME2")
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PresentationIntentType = "FOR PRESENTATION"
    return SyntheticInstance("dx-blank-01.dcm", ds)


def study_set(seed: str = "demo") -> list[SyntheticInstance]:
    """The demo's synthetic studies: 3 CT slices, MR, CR, burned-in text, colour US, blank DX."""
    return [
        *ct_series(seed),
        mr_image(seed),
        cr_image(seed),
        burned_in_text_image(seed),
        us_color_image(seed),
        blank_image(seed),
    ]


def write_instances(instances: Iterable[SyntheticInstance], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for instance in instances:
        path = directory / instance.name
        instance.dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def sample_files(names: Iterable[str] = SAMPLE_FILES) -> list[Path]:
    """Paths of pydicom's bundled test files (public data shipped with pydicom)."""
    from pydicom.data import get_testdata_file

    paths = []
    for name in names:
        found = get_testdata_file(name)
        if found is None:
            raise FileNotFoundError(f"pydicom test file {name} is not installed")
        paths.append(Path(str(found)))
    return paths
