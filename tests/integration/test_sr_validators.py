"""Independent validation of the SRs the processor writes: dciodvfy (dicom3tools) for the IOD
and PixelMed's DicomSRValidator for TID 1500, both from Debian (scripts/bootstrap.sh).

The SRs are written by the processor's own code (render -> local analyzer -> rules -> SR) for
every image file bundled with pydicom that the pipeline analyzes and for the synthetic study
set, plus SRs with every finding kind on a single- and a multi-frame source.

Warnings that remain, each justified:
- dciodvfy "Unrecognized defined term <99IMGPIPE> ... Coding Scheme Designator": our private
  coding scheme (PS3.16 8.2: "99" prefix), declared in the SR's Coding Scheme Identification
  Sequence; dciodvfy only knows the registered designators.
- dciodvfy "Missing attribute or value that would be needed to build DICOMDIR" for Study Date,
  Study Time, Study ID or Patient ID: type 2 attributes the source leaves empty stay empty in
  the SR, which invents no patient or study values; "Retired Person Name form" for a Patient's
  Name the source holds in that form (copied verbatim, never altered).
- PixelMed "Content Item not in template" for the qualitative evaluations inside a Measurement
  Group (Priority, Image Quality, the description and rule TEXT items): TID 1501 and TID 1410
  allow qualitative evaluations (CODE and TEXT) in a group, but PixelMed's 2022 template tables
  list none there, so it reports them as extra (not as errors).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from imaging_pipeline.analysis import make_analyzer
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.fhir.mapping import AnalyzerIdentity
from imaging_pipeline.process import analyze_dataset
from imaging_pipeline.settings import PipelineSettings
from imaging_pipeline.sop_filter import check_sop_class
from imaging_pipeline.sr.build import SourceImage, build_sr, source_image
from imaging_pipeline.sr.encode import part10_bytes
from pydicom.dataset import Dataset

from imaging_dev.synthetic import study_set
from tests.support.render_fixtures import PYDICOM_TEST_FILES, synthetic
from tests.support.sr import ANALYZER, EVERY_KIND, assessment_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MULTIFRAME_SC = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word Secondary Capture

ROOT = Path(__file__).resolve().parents[2]
PIXELMED_JAR = Path("/usr/share/java/pixelmed.jar")
# JDK 17 limits XPath expression sizes; PixelMed's template stylesheets exceed the defaults.
JAVA_XPATH_UNLIMITED = (
    "-Djdk.xml.xpathExprOpLimit=0",
    "-Djdk.xml.xpathExprGrpLimit=0",
    "-Djdk.xml.xpathTotalOpLimit=0",
)
DCIODVFY_ALLOWED = re.compile(
    r"^Warning - Unrecognized defined term <99IMGPIPE> for value 1 of attribute "
    r"<Coding Scheme Designator>$"
    # Type 2 attributes the source leaves empty stay empty (the SR invents no patient or study
    # values); dciodvfy notes that a DICOMDIR could not index them.
    r"|^Warning - Missing attribute or value that would be needed to build DICOMDIR - "
    r"(Study Date|Study Time|Study ID|Patient ID)$"
    # Patient's Name is copied verbatim: a single-component name ("PLA") is the source's.
    r"|^Warning - Value dubious for this VR - \(0x0010,0x0010\) PN Patient's Name  PN \[1\] = "
    r"<[^>]*> - Retired Person Name form$"
)
PIXELMED_ALLOWED = re.compile(
    r'^Warning: [0-9.]+: .*/CONTAINER \(125007,DCM,"Measurement Group"\)/'
    r'(CODE \(260870009,SCT,"Priority \(attribute\)"\)|CODE \(111101,DCM,"Image Quality"\)'
    r'|TEXT \((description|priority-rule),99IMGPIPE,"[^"]+"\)): Content Item not in template$'
)


def _analyzed_sr(ds: Dataset, settings: PipelineSettings, analyzer: object) -> Dataset | None:
    try:
        check_sop_class(ds.get("SOPClassUID"))
        image, findings, assessment = analyze_dataset(ds, settings, analyzer)  # type: ignore[arg-type]
    except (PermanentError, AttributeError, ValueError):
        return None  # not analyzed by the pipeline: no SR either
    identity = AnalyzerIdentity(analyzer.name, analyzer.version)  # type: ignore[attr-defined]
    return build_sr(ds, source_image(image), findings, assessment, identity)


@pytest.fixture(scope="module")
def built_srs() -> dict[str, Dataset]:
    """The SR of every source the pipeline analyzes, and SRs with every finding kind."""
    settings = PipelineSettings.model_validate({"analyzer": "local"})
    analyzer = make_analyzer(settings)
    sources: dict[str, Dataset] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(PYDICOM_TEST_FILES.rglob("*.dcm")):
            try:
                ds = pydicom.dcmread(path)
                ds.StudyInstanceUID, ds.SOPInstanceUID  # noqa: B018 - the SR needs both
            except Exception:  # noqa: S112 - unreadable or incomplete files are not analyzed
                continue
            sources[f"pydicom-{path.stem}"] = ds
    for instance in study_set("validators"):
        sources[f"synthetic-{Path(instance.name).stem}"] = instance.dataset
    built: dict[str, Dataset] = {}
    for name, source in sources.items():
        sr = _analyzed_sr(source, settings, analyzer)
        if sr is not None:
            built[name] = sr
    for frames in (1, 4):
        shape = (frames, 48, 64) if frames > 1 else (48, 64)
        # A multi-frame source has a multi-frame SOP class (frame references need one).
        every = synthetic(np.zeros(shape, dtype=np.uint16), sop_class=MULTIFRAME_SC, Modality="OT")
        every.StudyInstanceUID, every.SeriesInstanceUID = "1.2.3", "1.2.3.9"
        image = SourceImage(48, 64, frames=frames, frame=frames // 2)
        sr = build_sr(
            every, image, EVERY_KIND, assessment_of(EVERY_KIND), ANALYZER, predecessors=["2.25.1"]
        )
        built[f"every-kind-{frames}-frames"] = sr
    return built


@pytest.fixture(scope="module")
def written_srs(
    built_srs: dict[str, Dataset], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The files the validators read: the bytes the processor sends with STOW-RS."""
    out = tmp_path_factory.mktemp("srs")
    written = {name: out / f"{name}.dcm" for name in built_srs}
    for name, sr in built_srs.items():
        written[name].write_bytes(part10_bytes(sr))
    return written


# The corpus has one-component patient names, which highdicom's person-name check warns about.
@pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning")
def test_the_bytes_sent_equal_what_pydicoms_writer_writes(
    built_srs: dict[str, Dataset], written_srs: dict[str, Path]
) -> None:
    """imaging_pipeline.sr.encode against pydicom's save_as on every SR of the corpus (real
    files' names, character sets and dates reach the SR)."""
    for name, sr in built_srs.items():
        buffer = io.BytesIO()
        sr.save_as(buffer, enforce_file_format=True)
        assert written_srs[name].read_bytes() == buffer.getvalue(), name


def test_srs_were_written_for_the_corpus(written_srs: dict[str, Path]) -> None:
    pydicom_srs = [n for n in written_srs if n.startswith("pydicom-")]
    synthetic_srs = [n for n in written_srs if n.startswith("synthetic-")]
    assert len(pydicom_srs) >= 40, sorted(written_srs)
    assert len(synthetic_srs) == len(study_set("validators"))


def test_dciodvfy_finds_no_error(written_srs: dict[str, Path]) -> None:
    dciodvfy = shutil.which("dciodvfy")
    assert dciodvfy, "dciodvfy missing: run scripts/bootstrap.sh (Debian package dicom3tools)"
    problems = {}
    for name, path in written_srs.items():
        result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
        lines = (result.stdout + result.stderr).splitlines()
        assert "Comprehensive3DSR" in lines, lines[:5]
        unexpected = [
            line
            for line in lines
            if line.strip() and line != "Comprehensive3DSR" and not DCIODVFY_ALLOWED.match(line)
        ]
        if unexpected:
            problems[name] = unexpected
    assert problems == {}


def test_pixelmed_sr_validator_finds_no_error(written_srs: dict[str, Path]) -> None:
    java = shutil.which("java")
    assert java and PIXELMED_JAR.exists(), "run scripts/bootstrap.sh (libpixelmed-java, JRE)"
    files = [str(p) for p in written_srs.values()]
    result = subprocess.run(
        [
            java,
            *JAVA_XPATH_UNLIMITED,
            "-cp",
            str(PIXELMED_JAR),
            str(ROOT / "tests" / "tools" / "ValidateSr.java"),
            *files,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    reports = dict(
        (block.split("\n", 1)[0].strip(), block.split("\n", 1)[1])
        for block in result.stdout.split("=== ")[1:]
    )
    assert sorted(reports) == sorted(files)
    problems = {}
    for path, report in reports.items():
        lines = [line for line in report.splitlines() if line.strip()]
        assert "Found Root Template TID_1500 (MeasurementReport)" in lines, lines[:5]
        assert "IOD validation complete" in lines
        unexpected = [
            line
            for line in lines
            if line.startswith(("Error", "Warning")) and not PIXELMED_ALLOWED.match(line)
        ]
        if unexpected:
            problems[path] = unexpected
    assert problems == {}
