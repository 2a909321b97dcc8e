"""The coded concepts of our TID 1500 reports: standard codes where DICOM, SNOMED CT or LOINC
have one, and a private coding scheme (declared in every SR) for this pipeline's own categories.

Private code values are stable identifiers: changing one changes what readers of earlier SRs
see, so add new codes rather than rename old ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

if TYPE_CHECKING:
    from imaging_pipeline.settings import FindingKind, Priority

# PS3.16 8.2: designators starting with "99" are private (local) coding schemes.
SCHEME = "99IMGPIPE"
SCHEME_NAME = "imaging-pipeline-gcp finding categories"
SCHEME_ORGANIZATION = "imaging-pipeline-gcp"


def _private(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value, SCHEME, meaning)


def coding_scheme() -> CodingSchemeIdentificationItem:
    """The Coding Scheme Identification item that declares `SCHEME` in the SR itself."""
    return CodingSchemeIdentificationItem(
        designator=SCHEME, name=SCHEME_NAME, responsible_organization=SCHEME_ORGANIZATION
    )


# TID 1500 row 4 "Procedure reported" (CID 100 is extensible): SCT "Imaging (procedure)".
PROCEDURE_REPORTED = CodedConcept("363679005", "SCT", "Imaging procedure")  # CID 100 meaning
# TID 1501 row 3b "Finding": the analyzer's kind of finding. No standard code says "a label a
# general-purpose image classifier gave" or "burned-in text", so these are private.
FINDING_TYPE: dict[FindingKind, CodedConcept] = {
    "burned_in_text": _private("burned-in-text", "Burned-in text"),
    "text": _private("text", "Text in image"),
    "label": _private("image-label", "Image label"),
    "object": _private("detected-object", "Detected object"),
    "blank_image": _private("blank-image", "Blank or uniform image"),
    "exposure": _private("exposure", "Exposure finding"),
}
KIND_OF_FINDING_TYPE = {(c.value, c.scheme_designator): kind for kind, c in FINDING_TYPE.items()}
# TID 300 measurement: the analyzer's score in [0, 1], a dimensionless UCUM "1".
SCORE = CodedConcept.from_code(codes.SCT.Score)
SCORE_UNIT = CodedConcept.from_code(codes.UCUM.NoUnits)
# Qualitative evaluations. Image quality (DCM 111101) with the standard over/under exposed
# values of CID 6041 "Mammography Image Quality Finding"; blank has no standard value.
IMAGE_QUALITY = CodedConcept.from_code(codes.DCM.ImageQuality)
IMAGE_QUALITY_VALUE = {
    "overexposed": CodedConcept.from_code(codes.DCM.OverExposed),
    "underexposed": CodedConcept.from_code(codes.DCM.UnderExposed),
    "blank or uniform image": _private("blank-image", "Blank or uniform image"),
}
FINDING_DESCRIPTION = _private("description", "Finding description")
PRIORITY = CodedConcept.from_code(codes.SCT.Priority)
PRIORITY_VALUE: dict[Priority, CodedConcept] = {
    "routine": _private("routine", "Routine"),
    "urgent": _private("urgent", "Urgent"),
    "critical": _private("critical", "Critical"),
}
PRIORITY_OF_VALUE = {c.value: p for p, c in PRIORITY_VALUE.items()}
PRIORITY_RULE = _private("priority-rule", "Priority rule")
QUALITATIVE_EVALUATIONS = CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
