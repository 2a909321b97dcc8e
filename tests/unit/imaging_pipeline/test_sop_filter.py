"""SOP class and modality filter: non-image objects (our own outputs too) are never analyzed."""

from __future__ import annotations

import pytest
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.settings import PipelineSettings
from imaging_pipeline.sop_filter import check_modality, check_sop_class

STORAGE = "1.2.840.10008.5.1.4.1.1."
ALLOWED = PipelineSettings().modalities


@pytest.mark.parametrize(
    "uid",
    [
        STORAGE + "88.11",  # Basic Text SR
        STORAGE + "88.22",  # Enhanced SR
        STORAGE + "66.4",  # Segmentation
        STORAGE + "11.1",  # Grayscale Softcopy Presentation State
        STORAGE + "88.59",  # Key Object Selection
        STORAGE + "104.1",  # Encapsulated PDF
        STORAGE + "481.2",  # RT Dose
        STORAGE + "481.3",  # RT Structure Set
        STORAGE + "481.5",  # RT Plan
    ],
)
def test_non_image_sop_classes_are_skipped(uid: str) -> None:
    with pytest.raises(PermanentError) as err:
        check_sop_class(uid)
    assert err.value.reason == "unsupported_sop_class"


@pytest.mark.parametrize(
    "uid", [STORAGE + "2", STORAGE + "4", STORAGE + "1.1", STORAGE + "6.1", STORAGE + "7"]
)
def test_image_sop_classes_pass(uid: str) -> None:
    check_sop_class(uid)


def test_missing_sop_class_is_invalid() -> None:
    with pytest.raises(PermanentError, match="invalid_dicom"):
        check_sop_class(None)


@pytest.mark.parametrize(
    ("modality", "reason"),
    [
        ("SR", "unsupported_sop_class"),
        ("seg", "unsupported_sop_class"),
        ("ECG", "unsupported_modality"),
        ("HD", "unsupported_modality"),
    ],
)
def test_modalities_outside_the_allow_list(modality: str, reason: str) -> None:
    with pytest.raises(PermanentError) as err:
        check_modality(modality, ALLOWED)
    assert err.value.reason == reason


@pytest.mark.parametrize("modality", ["CT", " mr ", None, ""])
def test_allowed_or_unknown_modalities_pass(modality: str | None) -> None:
    check_modality(modality, ALLOWED)
