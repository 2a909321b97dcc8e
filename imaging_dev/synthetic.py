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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    generate_uid,
)

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
STUDY_DATE = "20260115"


@dataclass(frozen=True)
class SyntheticInstance:
    name: str  # a file name that says what the instance is
    dataset: Dataset

    @property
    def modality(self) -> str:
        return str(self.dataset.Modality)


def _uid(seed: str, *parts: str) -> UID:
    return generate_uid(entropy_srcs=[seed, *parts])


def _base(
    seed: str, study: str, series: str, number: int, sop_class: UID, modality: str, description: str
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = _uid(seed, study, series, str(number))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid(seed, study)
    ds.SeriesInstanceUID = _uid(seed, study, series)
    ds.Modality = modality
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.StudyDescription = f"Synthetic {study}"
    ds.SeriesDescription = description
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    # Fictitious identity: the pipeline's PHI scrubbing must hide these from every log line.
    ds.PatientName = "Synthetic^Demo"
    ds.PatientID = "SYN-0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.AccessionNumber = f"SYN-{study.upper()}"
    ds.StudyID = "1"
    ds.Manufacturer = "imaging-pipeline synthetic"
    return ds


def _set_pixels(ds: Dataset, pixels: NDArray[Any], photometric: str) -> Dataset:
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.PhotometricInterpretation = photometric
    if pixels.ndim == 3:
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = 0
    else:
        ds.SamplesPerPixel = 1
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if np.issubdtype(pixels.dtype, np.signedinteger) else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def _disc(size: int, radius: float, centre: tuple[float, float] | None = None) -> NDArray[Any]:
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = centre or ((size - 1) / 2, (size - 1) / 2)
    return np.asarray((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2)


def ct_series(seed: str = "demo", slices: int = 3, size: int = 64) -> list[SyntheticInstance]:
    """A CT phantom in Hounsfield units: air -1000, soft tissue 40, a bone insert 700."""
    out = []
    for i in range(slices):
        hu = np.full((size, size), -1000, dtype=np.int16)
        hu[_disc(size, size * 0.42)] = 40
        hu[_disc(size, size * (0.08 + 0.02 * i), (size * 0.35, size * 0.5))] = 700
        ds = _base(seed, "ct", "axial", i + 1, CTImageStorage, "CT", "Synthetic CT phantom")
        # Stored values are unsigned; HU = stored * slope + intercept.
        _set_pixels(ds, (hu + 1024).astype(np.uint16), "MONOCHROME2")
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = [40, 400], [400, 2000]  # multi-valued on purpose
        ds.SliceThickness = 5
        ds.ImagePositionPatient = [0, 0, 5 * i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.KVP = 120
        out.append(SyntheticInstance(f"ct-{i + 1:02d}.dcm", ds))
    return out


def mr_image(seed: str = "demo", size: int = 64) -> SyntheticInstance:
    """A 16-bit MR slice with a smooth gradient and a bright lesion."""
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = (200 + 8 * xx + 4 * yy).astype(np.uint16)
    pixels[~_disc(size, size * 0.45)] = 0
    pixels[_disc(size, size * 0.1, (size * 0.6, size * 0.4))] = 2400
    ds = _base(seed, "mr", "t2", 1, MRImageStorage, "MR", "Synthetic MR T2")
    _set_pixels(ds, pixels, "MONOCHROME2")
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
    ds = _base(seed, "cr", "chest", 1, ComputedRadiographyImageStorage, "CR", "Synthetic chest")
    _set_pixels(ds, pixels, "MONOCHROME1")
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
    ds = _base(
        seed, "sc", "capture", 1, SecondaryCaptureImageStorage, "OT", "Synthetic screen capture"
    )
    _set_pixels(ds, np.asarray(image, dtype=np.uint8), "MONOCHROME2")
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
    patch = _disc(size, size * 0.1, (size * 0.5, size * 0.5)) & sector
    rgb[patch] = (200, 30, 30)
    ds = _base(seed, "us", "doppler", 1, UltrasoundImageStorage, "US", "Synthetic Doppler")
    _set_pixels(ds, rgb, "RGB")
    return SyntheticInstance("us-color-01.dcm", ds)


def blank_image(seed: str = "demo", size: int = 64) -> SyntheticInstance:
    """A DX with no signal (a failed exposure): the blank-image rule flags it."""
    ds = _base(
        seed,
        "dx",
        "blank",
        1,
        DigitalXRayImageStorageForPresentation,
        "DX",
        "Synthetic blank exposure",
    )
    _set_pixels(ds, np.full((size, size), 512, dtype=np.uint16), "MONOCHROME2")
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
