"""Is this object DICOM? Decided from the header alone, without loading pixel data.

A Part 10 file has a 128-byte preamble and the 'DICM' magic; some archives also hold bare
datasets (no preamble, no file meta). Both are accepted; anything else is `not_dicom`, and a
file that claims to be DICOM but cannot be parsed is `corrupt`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from imaging_pipeline.logs import messages_on_this_thread
from imaging_pipeline.telemetry import IngestFailure

FailureReason = IngestFailure  # reason codes are part of the telemetry contract

PART10_MAGIC_OFFSET = 128
PART10_MAGIC = b"DICM"
# A DICOMDIR indexes media; it is not an instance a DICOM store accepts.
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


class ObjectRejectedError(Exception):
    """A permanent, per-object failure; `reason` goes into the object's metadata."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: FailureReason = reason
        self.detail = detail


@dataclass(frozen=True)
class CheckedInstance:
    """The UIDs of a checked instance, its header (pixels deferred) and the bytes to send."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    part10: bytes
    header: Dataset = field(repr=False, compare=False)


def is_part10(payload: bytes) -> bool:
    return payload[PART10_MAGIC_OFFSET : PART10_MAGIC_OFFSET + 4] == PART10_MAGIC


# pydicom's warnings about odd files are noise to callers (it logs them as well, which is what
# `_read_header` reads). One filter, installed at import and never changed: swapping filters
# per call is not thread-safe (render.api does the same).
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


class TruncatedDataError(ValueError):
    """The data ends before the header or the pixel data it declares (an interrupted upload)."""


PIXEL_DATA = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF


def _read_header(payload: bytes, *, force: bool) -> Dataset:
    """Parses everything but defers large values: pixel bytes are located, never loaded."""
    with messages_on_this_thread("pydicom") as logged:
        header = dcmread(io.BytesIO(payload), defer_size=1024, force=force)
    # pydicom only warns when encapsulated pixel data or a sequence runs past the end.
    if any("End of file reached" in message for message in logged):
        raise TruncatedDataError("the data ends inside an element")
    # A deferred element is still raw: it knows where its value starts and how long it is.
    pixels = header.get_item(PIXEL_DATA, keep_deferred=True)
    if pixels is None and _is_image(header):
        # pydicom silently drops an element cut off at the end of the data.
        raise TruncatedDataError("an image instance without pixel data")
    tell = getattr(pixels, "value_tell", None)
    length = getattr(pixels, "length", None)
    deflated = (
        getattr(getattr(header, "file_meta", None), "TransferSyntaxUID", None)
        == DeflatedExplicitVRLittleEndian
    )  # positions refer to the inflated stream
    if (
        tell is not None
        and length is not None
        and length != UNDEFINED_LENGTH
        and not deflated
        and tell + length > len(payload)
    ):
        raise TruncatedDataError("the data ends inside the pixel data")
    return header


def _is_image(header: Dataset) -> bool:
    """Image storage SOP classes (and anything with Rows/Columns) carry pixel data."""
    if "Rows" in header and "Columns" in header:
        return True
    try:
        return "Image Storage" in UID(str(header.get("SOPClassUID", ""))).name
    except Exception:  # a malformed UID value is judged elsewhere
        return False


def check_dicom(payload: bytes) -> CheckedInstance:
    """Returns the instance's UIDs and Part 10 bytes, or raises ObjectRejectedError."""
    if is_part10(payload):
        try:
            header = _read_header(payload, force=False)
        except TruncatedDataError as exc:  # say so: the fix is to upload the file again
            raise ObjectRejectedError("corrupt", f"truncated file: {exc}") from exc
        except Exception as exc:  # pydicom raises many types on damaged headers
            raise ObjectRejectedError(
                "corrupt", f"unreadable DICOM header: {type(exc).__name__}"
            ) from exc
        media_class = str(getattr(header.file_meta, "MediaStorageSOPClassUID", ""))
        if media_class == MEDIA_STORAGE_DIRECTORY:
            raise ObjectRejectedError("not_dicom", "DICOMDIR (a media index, not an instance)")
        if not _has_instance_uids(header):
            raise ObjectRejectedError("corrupt", "DICM prefix but no SOP Class/Instance UID")
        part10 = payload
    else:
        header = _read_bare_dataset(payload)
        part10 = _to_part10(payload)
    return CheckedInstance(
        study_uid=str(header.get("StudyInstanceUID", "")),
        series_uid=str(header.get("SeriesInstanceUID", "")),
        sop_instance_uid=str(header.get("SOPInstanceUID", "")),
        sop_class_uid=str(header.get("SOPClassUID", "")),
        part10=part10,
        header=header,
    )


def _read_bare_dataset(payload: bytes) -> Dataset:
    # force=True parses almost anything, so a bare dataset only counts as DICOM when it yields
    # the two UIDs every composite instance has.
    try:
        header = _read_header(payload, force=True)
    except Exception as exc:
        raise ObjectRejectedError("not_dicom", "no DICM prefix and not a DICOM dataset") from exc
    if not _has_instance_uids(header):
        raise ObjectRejectedError("not_dicom", "no DICM prefix and not a DICOM dataset")
    return header


def _has_instance_uids(header: Dataset) -> bool:
    try:
        return bool(header.get("SOPClassUID")) and bool(header.get("SOPInstanceUID"))
    except Exception:  # garbage parsed leniently fails on first element access
        return False


def _to_part10(payload: bytes) -> bytes:
    """Wraps a bare dataset in a Part 10 file, because STOW-RS sends Part 10 files."""
    try:
        dataset = dcmread(io.BytesIO(payload), force=True)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = dataset.SOPClassUID
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        # Keep the encoding pydicom detected, so nothing is converted.
        implicit, little = dataset.original_encoding
        meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian
            if implicit is not False
            else ExplicitVRLittleEndian
            if little is not False
            else ExplicitVRBigEndian
        )
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        dataset.file_meta = meta
        out = io.BytesIO()
        dataset.save_as(out, enforce_file_format=True)
        return out.getvalue()
    except (InvalidDicomError, ValueError, AttributeError, OSError) as exc:
        raise ObjectRejectedError("corrupt", f"bare dataset cannot be re-encoded: {exc}") from exc
