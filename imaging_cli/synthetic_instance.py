"""Synthetic DICOM instances built in code: no PHI, small, deterministic (UIDs from a seed).

The product needs one of them: `imaging smoke` stores a one-slice synthetic CT in a deployed
environment. The dev tooling's study set (imaging_dev/synthetic.py) builds its other modalities
on the same helpers, so both produce instances the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

STUDY_DATE = "20260115"


@dataclass(frozen=True)
class SyntheticInstance:
    name: str  # a file name that says what the instance is
    dataset: Dataset

    @property
    def modality(self) -> str:
        return str(self.dataset.Modality)


def uid(seed: str, *parts: str) -> UID:
    return generate_uid(entropy_srcs=[seed, *parts])


def base_dataset(
    seed: str, study: str, series: str, number: int, sop_class: UID, modality: str, description: str
) -> Dataset:
    """The header every synthetic instance shares, with a fictitious patient identity."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid(seed, study, series, str(number))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid(seed, study)
    ds.SeriesInstanceUID = uid(seed, study, series)
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


def set_pixels(ds: Dataset, pixels: NDArray[Any], photometric: str) -> Dataset:
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


def disc(size: int, radius: float, centre: tuple[float, float] | None = None) -> NDArray[Any]:
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = centre or ((size - 1) / 2, (size - 1) / 2)
    return np.asarray((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2)


def ct_series(seed: str = "demo", slices: int = 3, size: int = 64) -> list[SyntheticInstance]:
    """A CT phantom in Hounsfield units: air -1000, soft tissue 40, a bone insert 700."""
    out = []
    for i in range(slices):
        hu = np.full((size, size), -1000, dtype=np.int16)
        hu[disc(size, size * 0.42)] = 40
        hu[disc(size, size * (0.08 + 0.02 * i), (size * 0.35, size * 0.5))] = 700
        ds = base_dataset(seed, "ct", "axial", i + 1, CTImageStorage, "CT", "Synthetic CT phantom")
        # Stored values are unsigned; HU = stored * slope + intercept.
        set_pixels(ds, (hu + 1024).astype(np.uint16), "MONOCHROME2")
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = [40, 400], [400, 2000]  # multi-valued on purpose
        ds.SliceThickness = 5
        ds.ImagePositionPatient = [0, 0, 5 * i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.KVP = 120
        out.append(SyntheticInstance(f"ct-{i + 1:02d}.dcm", ds))
    return out
