"""The TID 1500 SR: deterministic UIDs, what it says (read back with highdicom), what it copies
from the source (nothing beyond the required patient/study attributes), and its references."""

from __future__ import annotations

import copy
import io
from concurrent.futures import ThreadPoolExecutor

import highdicom as hd
import numpy as np
import pydicom
import pytest
from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.fhir.mapping import AnalyzerIdentity
from imaging_pipeline.rules import Assessment, Match, highest
from imaging_pipeline.settings import Rule
from imaging_pipeline.sr import build, codes
from imaging_pipeline.sr.build import (
    COPIED_ATTRIBUTES,
    SERIES_DESCRIPTION,
    SR_SOP_CLASS_UID,
    SourceImage,
    build_sr,
    sr_identity,
)
from imaging_pipeline.sr.read import read_report
from pydicom.dataset import Dataset

from tests.support.render_fixtures import PYDICOM_TEST_FILES, synthetic
from tests.support.sr import ANALYZER, EVERY_KIND, assessment_of

EXTRA_PHI = {
    "OtherPatientIDs": "MRN-55501234",
    "PatientAddress": "1 Zzyzx Road",
    "InstitutionName": "Quintessa General",
    "StationName": "QSTATION9",
    "StudyDescription": "Zzyzx chest",
    "PatientAge": "063Y",
}


def _source(frames: int = 1) -> Dataset:
    shape = (frames, 40, 60) if frames > 1 else (40, 60)
    ds = synthetic(np.zeros(shape, dtype=np.uint16), Modality="CT")
    for keyword, value in EXTRA_PHI.items():
        setattr(ds, keyword, value)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Zzyzx^Quintessa", "PHI-7734921", "19610203"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", "1.2.3.4.5"
    ds.StudyDate, ds.AccessionNumber, ds.InstanceNumber = "20250102", "ACC1", 7
    return ds


def _roundtrip(sr: Dataset) -> Dataset:
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def test_findings_read_back_equal_what_the_analyzer_produced() -> None:
    source = _source()
    image = SourceImage(40, 60)
    assessment = assessment_of(EVERY_KIND)
    report = read_report(
        _roundtrip(build_sr(source, image, EVERY_KIND, assessment, ANALYZER)), image
    )

    assert [r.finding.kind for r in report.findings] == [f.kind for f in EVERY_KIND]
    for read, original in zip(report.findings, EVERY_KIND, strict=True):
        assert read.finding.description == original.description
        assert read.finding.score == pytest.approx(original.score)
        if original.box is None:
            assert read.finding.box is None
        else:
            assert read.finding.box == pytest.approx(original.box, abs=1e-5)
        assert read.priority == assessment.priority_of(original)
        matched = sorted({m.rule.name for m in assessment.matches if m.finding is original})
        assert list(read.rules) == matched
    assert report.priority == "critical" == assessment.priority
    assert report.rules == ("critical-labels", "critical-words")
    assert report.analyzer == (ANALYZER.name, ANALYZER.version)


def test_codes_standard_where_they_exist_and_the_private_scheme_is_declared() -> None:
    sr = build_sr(_source(), SourceImage(40, 60), EVERY_KIND, assessment_of(EVERY_KIND), ANALYZER)
    used = {str(e.value) for e in _walk(sr) if e.keyword == "CodeValue"}
    assert {"111211", "111212", "111101", "246262008", "260870009", "363679005"} <= used
    declared = [str(i.CodingSchemeDesignator) for i in sr.CodingSchemeIdentificationSequence]
    assert codes.SCHEME in declared
    # DCM, SCT, UCUM, UMLS are registered; the private one must be declared in the SR itself.
    schemes = {
        str(e.value)
        for e in _walk(sr)
        if e.keyword == "CodingSchemeDesignator" and e.value not in ("DCM", "SCT", "UCUM", "UMLS")
    }
    assert schemes <= {*declared, "RFC5646"}


def _walk(ds: Dataset):
    for element in ds:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)


def test_sr_joins_the_source_study_as_a_new_series_not_for_diagnostic_use() -> None:
    source = _source()
    sr = build_sr(source, SourceImage(40, 60), [], assessment_of([]), ANALYZER)
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.SeriesInstanceUID != source.SeriesInstanceUID
    assert sr.Modality == "SR" and sr.SOPClassUID == SR_SOP_CLASS_UID
    assert "not for diagnostic use" in sr.SeriesDescription == SERIES_DESCRIPTION
    assert len(sr.SeriesDescription) <= 64
    assert sr.PreliminaryFlag == "PRELIMINARY" and sr.VerificationFlag == "UNVERIFIED"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    referenced = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert read_report(sr, SourceImage(40, 60)).priority == "routine"


def test_only_required_patient_and_study_attributes_are_copied() -> None:
    source = _source()
    sr = build_sr(source, SourceImage(40, 60), EVERY_KIND, assessment_of(EVERY_KIND), ANALYZER)
    for keyword in COPIED_ATTRIBUTES:
        if keyword in source:
            assert sr[keyword].value == source[keyword].value
    raw = repr(_roundtrip(sr))
    for value in (*EXTRA_PHI.values(), "zzyzx chest"):
        assert value not in raw, value
    copied_from_source = {
        e.keyword for e in sr if e.keyword in source and e.keyword not in COPIED_ATTRIBUTES
    }
    # The only other shared keywords are ones the SR sets itself (UIDs of its own, SOP Common).
    assert copied_from_source <= {
        "SOPClassUID",
        "SOPInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "InstanceNumber",
        "SpecificCharacterSet",
    }
    assert sr.SOPInstanceUID != source.SOPInstanceUID
    # The burned-in words may be a patient's name: they never reach the SR.
    assert "pneumothorax" not in raw.lower() and "zzyzx" not in raw.lower().replace(
        "zzyzx^quintessa", ""
    )


def test_uids_are_deterministic_per_instance_and_analyzer_version() -> None:
    source = _source()
    image, assessment = SourceImage(40, 60), assessment_of(EVERY_KIND)
    first = build_sr(source, image, EVERY_KIND, assessment, ANALYZER)
    again = build_sr(source, image, EVERY_KIND, assessment, ANALYZER)
    assert (first.SOPInstanceUID, first.SeriesInstanceUID) == (
        again.SOPInstanceUID,
        again.SeriesInstanceUID,
    )
    newer = AnalyzerIdentity(ANALYZER.name, "2.0")
    upgraded = build_sr(source, image, EVERY_KIND, assessment, newer)
    assert upgraded.SOPInstanceUID != first.SOPInstanceUID
    assert upgraded.SeriesInstanceUID == first.SeriesInstanceUID  # one series per analyzer
    ids = sr_identity(source.StudyInstanceUID, source.SOPInstanceUID, ANALYZER)
    assert (ids.series_uid, ids.instance_uid) == (first.SeriesInstanceUID, first.SOPInstanceUID)
    assert all(len(uid) <= 64 for uid in (ids.series_uid, ids.instance_uid))


def test_a_new_analyzer_version_references_the_earlier_sr() -> None:
    source = _source()
    earlier = sr_identity(source.StudyInstanceUID, source.SOPInstanceUID, ANALYZER)
    newer = AnalyzerIdentity(ANALYZER.name, "2.0")
    sr = build_sr(
        source,
        SourceImage(40, 60),
        EVERY_KIND,
        assessment_of(EVERY_KIND),
        newer,
        predecessors=[earlier.instance_uid],
    )
    (study,) = sr.PredecessorDocumentsSequence
    assert study.StudyInstanceUID == source.StudyInstanceUID
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == earlier.series_uid
    (instance,) = series.ReferencedSOPSequence
    assert instance.ReferencedSOPInstanceUID == earlier.instance_uid
    assert instance.ReferencedSOPClassUID == SR_SOP_CLASS_UID


def test_regions_are_on_the_source_pixel_grid_and_frame() -> None:
    source = _source(frames=5)
    image = SourceImage(40, 60, frames=5, frame=2)
    finding = EVERY_KIND[0]  # box (0.1, 0.1, 0.5, 0.2)
    sr = build_sr(source, image, [finding], assessment_of([finding]), ANALYZER)
    region = next(e for e in _walk(sr) if e.keyword == "GraphicData").value
    assert list(np.round(region[:4], 3)) == [6.0, 4.0, 30.0, 4.0]  # column, row
    frames = [e.value for e in _walk(sr) if e.keyword == "ReferencedFrameNumber"]
    assert frames and all(int(f) == 3 for f in frames)


@pytest.mark.parametrize("charset", ["ISO_IR 192", "ISO_IR 100"])
def test_copied_names_keep_the_sources_character_set(charset: str) -> None:
    source = _source()
    source.SpecificCharacterSet, source.PatientName = charset, "Müller^Jürgen"
    sr = build_sr(source, SourceImage(40, 60), EVERY_KIND, assessment_of(EVERY_KIND), ANALYZER)
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    encoding = {"ISO_IR 192": "utf-8", "ISO_IR 100": "latin-1"}[charset]
    assert "Müller^Jürgen".encode(encoding) in buffer.getvalue()
    back = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert back.SpecificCharacterSet == charset and back.PatientName == "Müller^Jürgen"


def _bytes(sr: Dataset) -> bytes:
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _same_time(sr: Dataset) -> Dataset:
    """The SR with the creation times highdicom takes from the clock made constant."""
    for keyword in ("InstanceCreationDate", "ContentDate"):
        setattr(sr, keyword, "20250102")
    for keyword in ("InstanceCreationTime", "ContentTime"):
        setattr(sr, keyword, "030405")
    for item in sr.ContributingEquipmentSequence:
        item.ContributionDateTime = "20250102030405"
    return sr


def test_the_analyzers_parts_built_once_are_never_shared_between_srs() -> None:
    """The parts that depend only on the analyzer are built once and copied for each SR: what
    one SR adds (groups, evaluations) never shows in the next, in one thread or several."""
    source, image = _source(), SourceImage(40, 60)
    cases = [(list(EVERY_KIND[: n % 4]), f"2.25.{n}") for n in range(12)]

    def build(findings: list[Finding], uid: str) -> bytes:
        src = copy.deepcopy(source)
        src.SOPInstanceUID = uid
        return _bytes(_same_time(build_sr(src, image, findings, assessment_of(findings), ANALYZER)))

    alone = [build(*case) for case in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda case: build(*case), cases * 2))
    assert threaded == alone * 2
    empty = _roundtrip(build_sr(source, image, [], assessment_of([]), ANALYZER))
    assert "Imaging Measurements" not in repr(empty)
    assert read_report(empty, image).findings == ()


def test_changing_one_srs_header_in_place_leaves_the_next_alone() -> None:
    """Every SR's header and File Meta elements are its own, though made from one template."""
    source, image = _source(), SourceImage(40, 60)
    first = build_sr(source, image, [], assessment_of([]), ANALYZER)
    expected = _bytes(_same_time(build_sr(source, image, [], assessment_of([]), ANALYZER)))
    first.file_meta["ImplementationClassUID"].value = "1.2.3"
    first.file_meta["FileMetaInformationVersion"].value = b"\x00\x02"
    first["PatientID"].value = "changed"
    first["SeriesDescription"].value = "changed"
    second = build_sr(source, image, [], assessment_of([]), ANALYZER)
    assert _bytes(_same_time(second)) == expected


@pytest.mark.parametrize(
    ("sop_class", "findings"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", EVERY_KIND),  # CT Image
        ("1.2.840.10008.5.1.4.1.1.7.3", EVERY_KIND),  # Multi-frame Grayscale Word SC
        ("1.2.840.10008.5.1.4.43.1", ()),  # Generic Implant Template: no Patient module
        ("1.2.826.0.1.3680043.9.9999.1", ()),  # private: not in highdicom's tables
    ],
)
def test_patient_and_study_attributes_are_copied_as_highdicom_copies_them(
    sop_class: str, findings: tuple[Finding, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SR copies them without highdicom's per-SR search of the IOD tables, found once per
    SOP Class by highdicom itself: the same SR, or the same error."""
    source = _source()
    source.SOPClassUID = sop_class

    def written() -> bytes | str:
        try:
            sr = build_sr(source, SourceImage(40, 60), findings, assessment_of(findings), ANALYZER)
        except ValueError as exc:
            return repr(exc)
        return _bytes(_same_time(sr))

    ours = written()
    monkeypatch.setattr(
        build._Comprehensive3DSR,
        "copy_patient_and_study_information",
        hd.SOPClass.copy_patient_and_study_information,
    )
    assert written() == ours


def test_a_sop_class_highdicom_does_not_know_is_refused_with_a_value_error() -> None:
    """Not highdicom's KeyError, which the processor would take for a bug of ours."""
    source = _source()
    source.SOPClassUID = "1.2.826.0.1.3680043.9.9999.1"
    with pytest.raises(ValueError, match=r"1\.2\.826\.0\.1\.3680043\.9\.9999\.1 is not in"):
        build_sr(source, SourceImage(40, 60), EVERY_KIND, assessment_of(EVERY_KIND), ANALYZER)


@pytest.mark.parametrize(
    ("sop_class", "frames", "charset"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", 1, None),  # CT Image
        ("1.2.840.10008.5.1.4.1.1.7.3", 3, "ISO_IR 192"),  # Multi-frame Grayscale Word SC
        ("1.2.840.10008.5.1.4.1.1.77.1.6", 4, None),  # VL Whole Slide Microscopy: VOLUME origin
        ("1.2.840.10008.5.1.4.1.1.2", 1, ("ISO_IR 100", "ISO_IR 192")),
    ],
)
# ("ISO_IR 100", "ISO_IR 192"): pydicom warns that UTF-8 cannot be a code extension.
@pytest.mark.filterwarnings("ignore:Value 'ISO_IR 192' cannot be used as code extension")
def test_groups_equal_what_highdicom_builds(
    sop_class: str, frames: int, charset: str | tuple[str, ...] | None
) -> None:
    """Each Measurement Group is the encoding of one highdicom built with placeholders, with the
    finding's values put in: byte for byte what highdicom builds from the finding itself, for
    every kind, quality, priority, number of rules, score, box and character set (random,
    seeded)."""
    rng = np.random.default_rng(1410)
    descriptions = [*codes.IMAGE_QUALITY_VALUE, "PORTABLE", "", "x" * 1500, "Läsion, Größe"]
    source = _source()
    source.SOPClassUID = sop_class
    image = SourceImage(int(rng.integers(1, 5000)), int(rng.integers(1, 5000)), frames, frames - 1)
    evidence = build._evidence(source)
    for index in range(60):
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(-0.2, 1.2, 4))
        box = None if index % 3 == 0 else (x0, y0, x1, y1)
        finding = Finding(
            rng.choice(list(codes.FINDING_TYPE)).item(),
            str(rng.choice(descriptions)),
            float(rng.choice([0.0, 1.0, rng.random(), rng.random() / 1e7])),
            box=box,
        )
        priorities = rng.choice(list(codes.PRIORITY_VALUE), int(rng.integers(0, 4)))
        matches = tuple(
            Match(
                Rule(
                    name=f"rule-{rng.integers(0, 9)}",
                    finding=finding.kind,
                    terms=("x",) if finding.kind in ("label", "object", "text") else (),
                    priority=p,
                ),
                finding,
            )
            for p in priorities.tolist()
        )
        assessment = Assessment(highest(m.rule.priority for m in matches), matches)
        expected = build._highdicom_group(
            index=index,
            kind=finding.kind,
            description=finding.description,
            score=round(finding.score, 6),
            box=finding.box or build.WHOLE_IMAGE,
            priority=assessment.priority,
            rules=sorted({m.rule.name for m in matches}),
            algorithm=hd.sr.AlgorithmIdentification(name=ANALYZER.name, version=ANALYZER.version),
            sr_uid="2.25.77",
            source=evidence,
            image=image,
        )
        group = build._group(
            index, finding, assessment, ANALYZER, "2.25.77", evidence, image, charset
        )
        assert group == _item(expected, charset), (index, finding, matches)


def _item(item: Dataset, charset: str | tuple[str, ...] | None) -> bytes:
    """`item` as pydicom writes it in a sequence of a dataset of this character set."""
    parent = Dataset()
    if charset is not None:
        parent.SpecificCharacterSet = list(charset) if isinstance(charset, tuple) else charset
    parent.ContentSequence = [item]
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(buffer, parent)
    written = buffer.getvalue()
    return written[written.index(b"\xfe\xff\x00\xe0") :]  # from the item tag on


def _corpus() -> list[tuple[str, Dataset]]:
    """Every file pydicom ships that reads, headers only, and synthetic studies with odd values."""
    found: list[tuple[str, Dataset]] = []
    for path in sorted(PYDICOM_TEST_FILES.rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: S112 - not DICOM (or not readable): not a source
            continue
        if "StudyInstanceUID" in ds and "SOPInstanceUID" in ds and "SOPClassUID" in ds:
            found.append((path.name, ds))
    for name, sex, birth, person in [
        ("unusual-values", "O", "", "Müller^Jürgen"),
        ("invalid-sex", "X", "19610203", "Zzyzx"),  # highdicom refuses the sex, both ways
        ("invalid-date", "F", "20250231", "Zzyzx^Q"),  # highdicom refuses the date, both ways
    ]:
        odd = _source()
        odd.SpecificCharacterSet = "ISO_IR 192"
        odd.PatientSex, odd.PatientBirthDate, odd.PatientName = sex, birth, person
        odd.IssuerOfPatientID, odd.StudyTime = "HOSP", "101010.5"
        found.append((name, odd))
    return found


@pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning")
@pytest.mark.filterwarnings("ignore:Expected explicit VR, but found implicit VR:UserWarning")
def test_srs_equal_what_highdicom_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SR is a copy of one highdicom's constructor built once per analyzer and SOP Class,
    with this source's values put in: byte for byte what the constructor builds for the source
    itself (or the same error), on every file pydicom ships and on odd synthetic values."""
    findings = EVERY_KIND[:2]
    assessment = assessment_of(findings)

    def written(source: Dataset) -> bytes | str:
        try:
            sr = build_sr(source, SourceImage(40, 60), findings, assessment, ANALYZER)
        except (ValueError, TypeError, AttributeError) as exc:
            return type(exc).__name__
        return _bytes(_same_time(sr))

    corpus = _corpus()
    assert len(corpus) > 80
    copied = [written(ds) for _, ds in corpus]
    monkeypatch.setattr(build, "_has_evidence_uids", lambda evidence: False)
    constructed = [written(ds) for _, ds in corpus]
    for (name, _), ours, theirs in zip(corpus, copied, constructed, strict=True):
        assert ours == theirs, name
    assert sum(isinstance(w, bytes) for w in copied) > 60
    assert {"ValueError"} <= {w for w in copied if isinstance(w, str)}
