"""What cannot or should not be rendered is rejected with a typed reason, never a crash,
and the reason never carries patient data."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from imaging_pipeline.render import (
    NON_IMAGE_SOP_CLASSES,
    RejectReason,
    RenderRejected,
    is_image_sop_class,
    render_bytes,
    render_dataset,
    render_file,
)
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import (
    JPEG2000,
    MPEG2MPML,
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from tests.support.render_fixtures import part10, synthetic

R = RejectReason
HANDLER_REQUIREMENTS = Path(__file__).resolve().parents[4] / "handlers" / "requirements.txt"
PHI = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-31415",
    "PatientBirthDate": "19700101",
    "AccessionNumber": "ACC-27182",
}


def _image(**overrides: object) -> Dataset:
    ds = synthetic(np.arange(64, dtype=np.uint16).reshape(8, 8), **PHI)  # type: ignore[arg-type]
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def _without(keyword: str) -> Dataset:
    ds = _image()
    delattr(ds, keyword)
    return ds


def _with_transfer_syntax(uid: str) -> Dataset:
    """Compressed syntaxes carry encapsulated pixel data."""
    ds = _image()
    ds.file_meta.TransferSyntaxUID = UID(uid)
    ds.PixelData = encapsulate([bytes(ds.PixelData)])
    ds["PixelData"].VR = "OB"
    return ds


def _jpeg_garbage() -> Dataset:
    ds = _with_transfer_syntax(JPEGBaseline8Bit)
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 not a jpeg stream at all" * 4])
    return ds


def _truncated() -> Dataset:
    ds = _image()
    ds.PixelData = ds.PixelData[:-10]
    return ds


CASES: dict[str, tuple[Callable[[], Dataset], RejectReason]] = {
    "no pixel data": (lambda: _without("PixelData"), R.NO_PIXEL_DATA),
    "comprehensive SR": (
        lambda: _image(SOPClassUID="1.2.840.10008.5.1.4.1.1.88.33"),
        R.NON_IMAGE_SOP_CLASS,
    ),
    "RT dose with pixels": (
        lambda: _image(SOPClassUID="1.2.840.10008.5.1.4.1.1.481.2"),
        R.NON_IMAGE_SOP_CLASS,
    ),
    "segmentation": (
        lambda: _image(SOPClassUID="1.2.840.10008.5.1.4.1.1.66.4"),
        R.NON_IMAGE_SOP_CLASS,
    ),
    "MPEG-2 video": (lambda: _with_transfer_syntax(MPEG2MPML), R.UNSUPPORTED_TRANSFER_SYNTAX),
    "private syntax": (lambda: _with_transfer_syntax("1.2.3.4.5.6"), R.UNSUPPORTED_TRANSFER_SYNTAX),
    "truncated native": (_truncated, R.TRUNCATED),
    "garbage JPEG": (_jpeg_garbage, R.CORRUPT_PIXEL_DATA),
    "no BitsAllocated": (lambda: _without("BitsAllocated"), R.CORRUPT_PIXEL_DATA),
    "no Rows": (lambda: _without("Rows"), R.CORRUPT_PIXEL_DATA),
    "zero rows": (lambda: _image(Rows=0), R.ABSURD_DIMENSIONS),
    "65535 x 65535": (lambda: _image(Rows=65535, Columns=65535), R.ABSURD_DIMENSIONS),
    "100 megapixels": (lambda: _image(Rows=10000, Columns=10000), R.ABSURD_DIMENSIONS),
    "6000 x 6000 doubles": (
        lambda: _image(Rows=6000, Columns=6000, BitsAllocated=64),
        R.ABSURD_DIMENSIONS,
    ),
    "a million frames": (lambda: _image(NumberOfFrames=1_000_000), R.ABSURD_DIMENSIONS),
    "HSV": (lambda: _image(PhotometricInterpretation="HSV"), R.UNSUPPORTED_PHOTOMETRIC),
    "ARGB": (lambda: _image(PhotometricInterpretation="ARGB"), R.UNSUPPORTED_PHOTOMETRIC),
    "no photometric": (lambda: _without("PhotometricInterpretation"), R.UNSUPPORTED_PHOTOMETRIC),
    "RGB with one sample": (
        lambda: _image(PhotometricInterpretation="RGB"),
        R.UNSUPPORTED_PHOTOMETRIC,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected_with_the_right_reason_from_dataset_and_bytes(case: str) -> None:
    build, reason = CASES[case]
    with pytest.raises(RenderRejected) as from_dataset:
        render_dataset(build())
    assert from_dataset.value.reason is reason, str(from_dataset.value)
    with pytest.raises(RenderRejected) as from_bytes:
        render_bytes(part10(build()))
    assert from_bytes.value.reason is reason, str(from_bytes.value)
    for text in (str(from_dataset.value), from_dataset.value.detail, str(from_bytes.value)):
        for value in PHI.values():
            assert value.split("^")[0] not in text


def test_zero_number_of_frames_is_read_as_one_like_pydicom_does() -> None:
    image = render_dataset(_image(NumberOfFrames=0))
    assert (image.frames, image.frame) == (1, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, not dicom",
        b"\x89PNG\r\n\x1a\n" + bytes(200),
        bytes(range(256)) * 40,
        b"\x00" * 128 + b"DICM" + b"\xff" * 64,
    ],
    ids=["empty", "text", "png", "noise", "preamble-then-garbage"],
)
@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
def test_not_dicom(data: bytes) -> None:
    with pytest.raises(RenderRejected) as info:
        render_bytes(data)
    assert info.value.reason is R.NOT_DICOM


def test_not_dicom_file_and_missing_file(tmp_path: Path) -> None:
    text = tmp_path / "Doe_Jane.txt"
    text.write_text("patient notes")
    with pytest.raises(RenderRejected) as info:
        render_file(text)
    assert info.value.reason is R.NOT_DICOM and "Doe" not in str(info.value)
    with pytest.raises(FileNotFoundError):
        render_file(tmp_path / "missing.dcm")


def test_non_image_sop_classes_cover_the_families_the_filter_needs() -> None:
    storage = "1.2.840.10008.5.1.4.1.1."
    families = {
        "basic text SR": "88.11",
        "enhanced SR": "88.22",
        "comprehensive SR": "88.33",
        "key object selection": "88.59",
        "dose SR": "88.67",
        "segmentation": "66.4",
        "RT structure set": "481.3",
        "RT plan": "481.5",
        "RT dose": "481.2",
        "RT beams record": "481.4",
        "RT ion plan": "481.8",
        "grayscale PS": "11.1",
        "colour PS": "11.2",
        "encapsulated PDF": "104.1",
        "encapsulated CDA": "104.2",
        "encapsulated STL": "104.3",
        "raw data": "66",
        "12-lead ECG": "9.1.1",
        "spatial registration": "66.1",
    }
    for name, suffix in families.items():
        assert storage + suffix in NON_IMAGE_SOP_CLASSES, name
        assert not is_image_sop_class(storage + suffix), name
    assert not is_image_sop_class(storage + "88.999")  # a future SR class
    for image_class in (
        CTImageStorage,
        "1.2.840.10008.5.1.4.1.1.4",
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.481.1",
        "1.2.840.10008.5.1.4.1.1.1.1",
        "1.2.840.10008.5.1.4.1.1.2.1",
        "1.2.840.10008.5.1.4.1.1.77.1.6",
    ):
        assert is_image_sop_class(image_class), image_class
    assert all(re.fullmatch(r"[0-9.]+", uid) for uid in NON_IMAGE_SOP_CLASSES)


@pytest.mark.parametrize(
    "syntax",
    [
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLossless,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEGLSNearLossless,
        JPEG2000Lossless,
        JPEG2000,
        RLELossless,
    ],
    ids=lambda uid: uid.name,
)
def test_every_required_transfer_syntax_has_a_decoder(syntax: UID) -> None:
    assert get_decoder(syntax).is_available


def test_decoder_plugins_are_pinned_in_the_handler_requirements() -> None:
    pins = dict(
        line.split("==", 1)
        for line in HANDLER_REQUIREMENTS.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for package in (
        "pydicom",
        "pylibjpeg",
        "pylibjpeg-libjpeg",
        "pylibjpeg-openjpeg",
        "pylibjpeg-rle",
        "pyjpegls",
        "numpy",
        "pillow",
    ):
        assert re.fullmatch(r"[0-9][0-9a-z.]*", pins.get(package, "")), package


def test_sop_class_filter_does_not_load_the_renderer() -> None:
    """The function's event filter imports these on every event: no numpy/pydicom/Pillow."""
    code = (
        "import sys; from imaging_pipeline.render import NON_IMAGE_SOP_CLASSES, "
        "RejectReason, RenderRejected, is_image_sop_class; "
        "print(sorted({'numpy', 'pydicom', 'PIL'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=HANDLER_REQUIREMENTS.parent,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_no_patient_data_reaches_logs_or_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """pydicom logs its warnings (to the 'pydicom' logger, which propagates to the function's
    handler). Odd display values do trigger them; patient elements are never even decoded."""
    ds = _image(
        WindowCenter="1234",
        WindowWidth="5678",
        PatientBirthDate="19700101",
        PatientComments="Doe^Jane lives at 1 Main St",
    )
    # Native pixel data is read without pydicom's decoder; compressed data still goes through
    # it, and offset tables that disagree make it warn.
    ds.compress(RLELossless)
    ds.ExtendedOffsetTable = (0).to_bytes(8, "little")
    ds.ExtendedOffsetTableLengths = bytes(16)
    # Invalid values pydicom would refuse to set: patched into the encoded bytes instead.
    data = part10(ds).replace(b"1234", b"4O  ").replace(b"5678", b"abc ")
    data = data.replace(b"19700101", b"1970-01X")
    caplog.set_level("DEBUG")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_bytes(data)
        with pytest.raises(RenderRejected):
            render_bytes(part10(_image(Rows=0, PatientComments="Doe^Jane")))
    emitted = [record.getMessage() for record in caplog.records] + [str(w.message) for w in caught]
    assert any("Extended Offset Table" in text for text in emitted)  # pydicom did speak
    for text in emitted:
        for value in ("Doe", "Jane", "PID-31415", "1970", "ACC-27182", "Main St"):
            assert value not in text, text
