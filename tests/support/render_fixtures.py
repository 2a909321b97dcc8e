"""Synthetic DICOM for the render tests: built in code, no patient data."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

PYDICOM_TEST_FILES = Path(str(pydicom.data.get_testdata_file("CT_small.dcm"))).parent


def bundled(name: str) -> Path:
    return PYDICOM_TEST_FILES / name


def synthetic(
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    sop_class: str = CTImageStorage,
    bits_stored: int | None = None,
    **attributes: Any,
) -> Dataset:
    """A minimal image instance holding `pixels` (HxW, HxWx3, or FxHxW[x3] for multi-frame)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Synthetic^Phantom"
    if pixels.dtype.itemsize <= 2:
        ds.set_pixel_data(
            pixels,
            photometric_interpretation=photometric,
            bits_stored=bits_stored or pixels.dtype.itemsize * 8,
        )
    else:  # set_pixel_data stops at 16 bits; 32-bit single-frame greyscale by hand
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated = ds.BitsStored = pixels.dtype.itemsize * 8
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = int(pixels.dtype.kind == "i")
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def part10(ds: Dataset) -> bytes:
    """The dataset as DICOM Part 10 bytes (what WADO-RS returns)."""
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax.is_transfer_syntax:
        ds.save_as(buffer, enforce_file_format=True)
    else:  # a private transfer syntax: say how to encode the dataset itself
        ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    """Decode an encoded output image independently of the renderer."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def ct_slice(size: int = 512, seed: int = 0) -> np.ndarray:
    """int16 stored values of a CT-like slice (intercept -1024): air outside a body disc with
    soft tissue, fat, and bone, plus noise; padding -2000 outside the scan circle."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.hypot(x - size / 2, y - size / 2) / (size / 2)
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    hu[r < 0.8] = -100.0  # fat
    hu[r < 0.7] = 40.0  # soft tissue
    hu[(r > 0.2) & (r < 0.25)] = 700.0  # bone ring
    hu += rng.normal(0, 10, hu.shape).astype(np.float32)
    stored = np.rint(hu + 1024).astype(np.int16)
    stored[r >= 1.0] = -2000
    return stored


def ct_dataset(size: int = 512, seed: int = 0, **attributes: Any) -> Dataset:
    attrs: dict[str, Any] = {
        "RescaleIntercept": -1024,
        "RescaleSlope": 1,
        "PixelPaddingValue": -2000,
    }
    attrs.update(attributes)
    return synthetic(ct_slice(size, seed), bits_stored=16, **attrs)


def secondary_capture(pixels: np.ndarray, photometric: str, **attributes: Any) -> Dataset:
    return synthetic(pixels, photometric, SecondaryCaptureImageStorage, **attributes)
