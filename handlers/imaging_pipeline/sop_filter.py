"""Decide whether an instance is an image this pipeline analyzes.

Two checks: the modality allow-list from the pipeline settings and the SOP class (the rendering
core's list of non-image classes: SR, SEG, PR, KO, encapsulated PDF, RT...). Our own outputs are
such objects, so the pipeline never triggers itself. The modality check runs twice: once on the
notification's `modality` attribute when the store sends one (skips without a fetch), and once on
the retrieved dataset.
"""

from __future__ import annotations

from collections.abc import Collection

from imaging_pipeline.errors import PermanentError
from imaging_pipeline.settings import NON_IMAGE_MODALITIES


def check_modality(modality: str | None, allowed: Collection[str]) -> None:
    """Raise `PermanentError` unless `modality` is in the allow-list.

    A missing modality is accepted here: the SOP class check still applies and decides.
    """
    if not modality:
        return
    value = modality.strip().upper()
    if value in NON_IMAGE_MODALITIES:
        raise PermanentError("unsupported_sop_class", f"non-image modality {value}")
    if value not in allowed:
        raise PermanentError("unsupported_modality", f"modality {value} is not in the allow-list")


def check_sop_class(sop_class_uid: str | None) -> None:
    """Raise `PermanentError` for SOP classes that carry no image to analyze."""
    # Imported here: the rendering package pulls in numpy, which the cold start must not pay for.
    from imaging_pipeline.render import is_image_sop_class

    if not sop_class_uid:
        raise PermanentError("invalid_dicom", "instance has no SOP Class UID")
    if not is_image_sop_class(str(sop_class_uid)):
        raise PermanentError("unsupported_sop_class", f"SOP class {sop_class_uid}")
