"""The ingest DICOM check: accept Part 10 files and bare datasets, classify everything else."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest
from imaging_pipeline.adapters.gcs_move import destination_names
from imaging_pipeline.ingest.validation import ObjectRejectedError, check_dicom, is_part10
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from imaging_dev.synthetic import ct_series

# What pydicom warns about files cut on purpose here (a UID cut short, a sequence or pixel data
# without its end); `check_dicom` reads the end-of-file one from pydicom's log instead.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning"),
    pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning"),
]


def _testfile(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(str(path)).read_bytes()


def _reason(payload: bytes) -> str:
    with pytest.raises(ObjectRejectedError) as caught:
        check_dicom(payload)
    return caught.value.reason


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "rtplan.dcm", "test-SR.dcm"]
)
def test_part10_files_pass_unchanged_with_their_uids(name: str) -> None:
    payload = _testfile(name)
    header = pydicom.dcmread(io.BytesIO(payload), stop_before_pixels=True)
    checked = check_dicom(payload)
    assert checked.part10 is payload
    assert checked.sop_instance_uid == header.SOPInstanceUID
    assert checked.study_uid == header.StudyInstanceUID
    assert checked.series_uid == header.SeriesInstanceUID


def test_bare_dataset_is_wrapped_into_part10() -> None:
    dataset = ct_series(slices=1)[0].dataset
    raw = DicomBytesIO()
    raw.is_little_endian, raw.is_implicit_VR = True, True
    write_dataset(raw, dataset)
    bare = raw.getvalue()
    assert not is_part10(bare)
    checked = check_dicom(bare)
    assert is_part10(checked.part10)
    rewritten = pydicom.dcmread(io.BytesIO(checked.part10))
    assert rewritten.SOPInstanceUID == dataset.SOPInstanceUID
    assert rewritten.file_meta.MediaStorageSOPClassUID == dataset.SOPClassUID
    assert rewritten.PixelData == dataset.PixelData


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"plain text, not an image\n" * 20,
        b"%PDF-1.7\n" + bytes(400),
        b"\x89PNG\r\n\x1a\n" + bytes(400),
    ],
)
def test_other_content_is_not_dicom(payload: bytes) -> None:
    assert _reason(payload) == "not_dicom"


def test_dicomdir_is_not_an_instance() -> None:
    path = get_testdata_file("DICOMDIR")
    assert path is not None
    assert _reason(Path(str(path)).read_bytes()) == "not_dicom"


def test_truncated_header_is_corrupt() -> None:
    payload = _testfile("CT_small.dcm")
    assert _reason(payload[:200]) == "corrupt"  # ends inside the file meta group
    assert _reason(payload[:132] + b"\xff" * 300) == "corrupt"  # garbage after the DICM magic


def test_truncated_pixel_data_is_corrupt() -> None:
    payload = _testfile("CT_small.dcm")
    assert _reason(payload[: len(payload) - 1000]) == "corrupt"
    assert _reason(_testfile("MR_truncated.dcm")) == "corrupt"  # pydicom's own truncated file


def test_destination_names_keep_the_path_then_add_the_generation() -> None:
    assert destination_names("site-a/ct 1.dcm", "processed/", 42) == [
        "processed/site-a/ct 1.dcm",
        "processed/site-a/ct 1.42.dcm",
    ]
    assert destination_names("noext", "failed/", 7) == ["failed/noext", "failed/noext.7"]


# Transfer syntaxes and encodings an archive can hold: deflated, big endian, bare datasets...
ACCEPTED_SAMPLES = [
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "ExplVR_BigEndNoMeta.dcm",
    "ExplVR_LitEndNoMeta.dcm",
    "MR_small_implicit.dcm",
    "SC_rgb_rle.dcm",
    "JPEG-lossy.dcm",
    "examples_palette.dcm",
    "waveform_ecg.dcm",
    "rtdose.dcm",
]


@pytest.mark.parametrize("name", ACCEPTED_SAMPLES)
def test_pydicom_samples_in_many_encodings_are_accepted(name: str) -> None:
    checked = check_dicom(_testfile(name))
    assert is_part10(checked.part10) and checked.sop_instance_uid


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm", "JPEG-lossy.dcm"]
)
def test_files_cut_anywhere_after_the_preamble_are_corrupt(name: str) -> None:
    payload = _testfile(name)
    cuts = range(200, len(payload), max(1, len(payload) // 25))
    accepted = [cut for cut in cuts if _accepts(payload[:cut])]
    assert accepted == []


def test_files_checked_on_concurrent_threads_are_judged_as_alone() -> None:
    """`imaging ingest` checks files on several threads: each is judged as it is alone. Some
    cuts show only as pydicom's "End of file reached" warning; recorded with
    `warnings.catch_warnings`, threads saw each other's (a whole file rejected) or lost their
    own (a truncated one accepted): 20-26 wrong of 1,010 outcomes here."""
    payloads = []
    for name in ("JPEG2000.dcm", "SC_rgb_rle.dcm", "JPEG-lossy.dcm", "CT_small.dcm"):
        whole = _testfile(name)
        payloads += [whole, *(whole[:cut] for cut in range(200, len(whole), len(whole) // 25))]
    alone = [_outcome(payload) for payload in payloads]
    assert sum("inside an element" in outcome for outcome in alone) >= 20
    assert alone.count("accepted") == 4
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            assert list(pool.map(_outcome, payloads)) == alone


def _outcome(payload: bytes) -> str:
    try:
        check_dicom(payload)
    except ObjectRejectedError as rejected:
        return str(rejected)
    return "accepted"


def _accepts(payload: bytes) -> bool:
    try:
        check_dicom(payload)
    except ObjectRejectedError as rejected:
        assert rejected.reason == "corrupt"
        return False
    return True
