"""The SR's own Part 10 writer against pydicom's `save_as`: the same bytes, every time."""

from __future__ import annotations

import copy
import io

import numpy as np
import pydicom
import pytest
from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.fhir.mapping import AnalyzerIdentity
from imaging_pipeline.sr import encode
from imaging_pipeline.sr.build import SourceImage, build_sr
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.support.render_fixtures import synthetic
from tests.support.sr import ANALYZER, EVERY_KIND, assessment_of


def _save_as(dataset: Dataset) -> bytes:
    """pydicom's bytes, from a copy: `save_as` decodes the SR's encoded content tree in place."""
    buffer = io.BytesIO()
    copy.deepcopy(dataset).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _source(charset: str | None = None, name: str = "Zzyzx^Quintessa", frames: int = 1) -> Dataset:
    shape = (frames, 40, 60) if frames > 1 else (40, 60)
    ds = synthetic(np.zeros(shape, dtype=np.uint16), Modality="CT")
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, "PHI-7734921", "19610203"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20250102", "101112.5", "ACC1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", "1.2.3.4.5"
    return ds


def _never_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("fell back to pydicom's writer")

    monkeypatch.setattr(Dataset, "save_as", refuse)


SUBSETS = [EVERY_KIND[i : i + n] for n in (0, 1, 2, 7) for i in range(0, 8 - max(n, 1), 3)]


@pytest.mark.parametrize("findings", SUBSETS, ids=lambda f: f"{len(f)}-findings")
@pytest.mark.parametrize(
    ("charset", "name"),
    [(None, "Zzyzx^Quintessa"), ("ISO_IR 192", "Müller^Jürgen"), ("ISO_IR 100", "Müller^Jürgen")],
)
# Without predecessors the header is rendered from a template and kept encoded; with them,
# highdicom's constructor builds it.
@pytest.mark.parametrize("predecessors", [[], ["1.2.3.9"]], ids=["template", "constructed"])
def test_srs_are_written_byte_for_byte_as_pydicom_writes_them(
    findings: tuple[Finding, ...],
    charset: str | None,
    name: str,
    predecessors: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sr = build_sr(
        _source(charset, name),
        SourceImage(40, 60, frames=3, frame=1),
        findings,
        assessment_of(findings),
        AnalyzerIdentity("analyzer ü" if charset == "ISO_IR 192" else ANALYZER.name, "2.0"),
        predecessors=predecessors,
    )
    expected = _save_as(sr)
    _never_falls_back(monkeypatch)  # the SRs the pipeline builds all take the fast path
    assert encode.part10_bytes(sr) == expected
    read = pydicom.dcmread(io.BytesIO(expected))
    assert read.SOPInstanceUID == sr.SOPInstanceUID
    assert str(read.PatientName) == str(sr.PatientName) == name
    assert read.get("SpecificCharacterSet") == sr.get("SpecificCharacterSet") == charset


def test_encoded_elements_take_only_what_a_dataset_template_renders() -> None:
    ds = Dataset()
    ds.PatientID, ds.InstanceNumber = "PHI-1", 3
    data = encode.dataset_template(ds, lambda path, tag: None).render({})
    elements = encode.encoded_elements(data)
    assert Dataset(elements).PatientID == "PHI-1"
    assert Dataset(encode.encoded_elements(data)).InstanceNumber == 3
    with pytest.raises(ValueError, match="not a rendered dataset template"):
        encode.encoded_elements(data[:-2])  # cut short
    undefined = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"  # an undefined-length sequence
    with pytest.raises(ValueError, match="not a rendered dataset template"):
        encode.encoded_elements(undefined)


@pytest.mark.parametrize(
    "name", ["rtplan.dcm", "CT_small.dcm", "MR_small.dcm", "SC_rgb_rle.dcm", "ExplVR_BigEnd.dcm"]
)
def test_other_datasets_are_written_as_pydicom_writes_them(name: str) -> None:
    """Read from files (raw elements, pixel data, other transfer syntaxes): pydicom's writer
    whole, or element by element where this one declines."""
    path = get_testdata_file(name)
    assert isinstance(path, str), name
    dataset = pydicom.dcmread(path)
    assert encode.part10_bytes(dataset) == _save_as(dataset)


def _sr_with(values: dict[str, object]) -> Dataset:
    """An SR with `values` set at its top level and in a nested item."""
    sr = build_sr(_source(), SourceImage(40, 60), EVERY_KIND, assessment_of(EVERY_KIND), ANALYZER)
    item = Dataset()
    for keyword, value in values.items():
        setattr(sr, keyword, value)
        setattr(item, keyword, value)
    sr.ReferencedImageSequence = Sequence([item, Dataset()])
    return sr


def test_values_the_fast_path_declines_are_written_by_pydicom_element_by_element(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sr = _sr_with(
        {
            "PatientComments": "naïve",  # LT outside ASCII, default character set
            "OtherPatientNames": ["Doe^J", "Roe^R"],  # PN multi-value
            "ReferencedFrameNumber": ["1", "2"],  # IS multi-value
            "SelectorSSValue": -3,  # SS
            "DateOfLastCalibration": ["20240101", "20240202"],  # DA multi-value
            "TextValue": "x" * 70_001,  # UT beyond 64 KiB (32-bit length), odd: padded
            "CodeMeaning": "odd",  # LO padded
            "PixelSpacing": [0.5, 0.25],  # DS multi-value
            "SelectorFDValue": [1.5, -2.0],  # FD multi-value
        }
    )
    sr.add_new(0x00400000, "UL", 1234)  # a retired group length: never written
    expected = _save_as(sr)
    _never_falls_back(monkeypatch)
    assert encode.part10_bytes(sr) == expected


@pytest.mark.parametrize(
    "values",
    [
        {"LUTDescriptor": [4096, 0, 12]},  # ambiguous VR (US or SS): pydicom resolves it
        {"CodeMeaning": "x" * 70_000},  # too long for LO: pydicom writes it as UN
    ],
    ids=["ambiguous-vr", "long-short-vr"],
)
# pydicom warns that the value is too long for LO, then that it writes it as UN.
@pytest.mark.filterwarnings("ignore:The value length", "ignore:The value for the data element")
def test_datasets_the_fast_path_cannot_vouch_for_go_to_pydicom_whole(
    values: dict[str, object],
) -> None:
    sr = _sr_with(values)
    assert encode.part10_bytes(sr) == _save_as(sr)


def test_an_undefined_length_sequence_is_written_as_pydicom_writes_it() -> None:
    findings = EVERY_KIND[:2]
    sr = build_sr(_source(), SourceImage(40, 60), findings, assessment_of(findings), ANALYZER)
    sr["ContentSequence"].is_undefined_length = True
    sr.ContentSequence[0].is_undefined_length_sequence_item = True
    assert encode.part10_bytes(sr) == _save_as(sr)


@pytest.mark.parametrize("item_charset", ["", "ISO_IR 100", None])
def test_an_items_own_character_set_applies_to_it_as_in_pydicom(
    item_charset: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sr = build_sr(
        _source("ISO_IR 192", "Müller^Jürgen"),
        SourceImage(40, 60),
        EVERY_KIND[:1],
        assessment_of(EVERY_KIND[:1]),
        ANALYZER,
    )
    item = Dataset()
    if item_charset is not None:
        item.SpecificCharacterSet = item_charset
    item.CodeMeaning, item.PatientComments = "Größe", "naïve"
    sr.ReferencedImageSequence = Sequence([item])
    expected = _save_as(sr)
    _never_falls_back(monkeypatch)
    assert encode.part10_bytes(sr) == expected


def _meta_variant(change: str) -> Dataset:
    sr = _sr_with({})
    meta = sr.file_meta
    if change == "no-implementation":  # pydicom puts in its own implementation UID and name
        del meta.ImplementationClassUID
        del meta.ImplementationVersionName
    elif change == "empty-implementation-uid":
        meta["ImplementationClassUID"].value = ""
    elif change == "stale-group-length":
        meta.FileMetaInformationGroupLength = 3
        meta.FileMetaInformationVersion = b"\x00\x01"
    elif change == "odd-version":
        meta.FileMetaInformationVersion = b"\x01"
    elif change == "source-ae-title":
        meta.SourceApplicationEntityTitle = "IMAGING"  # AE, odd length: padded
    elif change == "preamble":
        sr.preamble = b"\x07" * 128
    elif change == "non-ascii-version-name":  # declined: pydicom writes the group
        meta.ImplementationVersionName = "ïmaging"
    return sr


@pytest.mark.parametrize(
    "change",
    [
        "as-built",
        "no-implementation",
        "empty-implementation-uid",
        "stale-group-length",
        "odd-version",
        "source-ae-title",
        "preamble",
        "non-ascii-version-name",
    ],
)
def test_the_file_meta_group_is_written_and_completed_as_pydicom_does(change: str) -> None:
    ours = _meta_variant(change)
    theirs = copy.deepcopy(ours)
    declined = change == "non-ascii-version-name"
    assert (encode._file_meta_group(ours.file_meta) is None) == declined
    assert encode.part10_bytes(ours) == _save_as(theirs)
    # ... and the File Meta left as save_as leaves it (untouched: dcmwrite completes a copy).
    assert list(ours.file_meta.items()) == list(theirs.file_meta.items())


@pytest.mark.parametrize(
    "charset", [None, "ISO_IR 192", ["ISO 2022 IR 6", "ISO 2022 IR 87"]], ids=str
)
def test_a_frozen_sequence_is_copied_as_pydicom_writes_it_in_any_character_set(
    charset: str | list[str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Encoded once (ASCII only: the same bytes whatever the SR's character set), then copied."""
    item = Dataset()
    item.CodeValue, item.CodeMeaning, item.ReferencedFrameNumber = "123", "odd", ["1", "2"]
    item.ConceptCodeSequence = Sequence([Dataset()])
    item.ConceptCodeSequence[0].CodeMeaning = "nested"
    sequence = pydicom.DataElement(0x00081140, "SQ", Sequence([item, Dataset()]))
    frozen = encode.frozen_sequence(sequence)
    assert frozen is not None
    sr = _sr_with({})
    if charset:
        sr.SpecificCharacterSet = charset
    sr.ReferencedImageSequence = Sequence([copy.deepcopy(item), Dataset()])
    expected = _save_as(sr)
    sr[0x00081140] = frozen
    _never_falls_back(monkeypatch)
    assert encode.part10_bytes(sr) == expected
    item.CodeMeaning = "Größe"  # its bytes would depend on the character set
    assert encode.frozen_sequence(sequence) is None
