"""Typed rejection: what cannot or should not be rendered is a permanent, explained outcome."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    NO_PIXEL_DATA = "no_pixel_data"
    NON_IMAGE_SOP_CLASS = "non_image_sop_class"
    UNSUPPORTED_TRANSFER_SYNTAX = "unsupported_transfer_syntax"
    CORRUPT_PIXEL_DATA = "corrupt_pixel_data"
    ABSURD_DIMENSIONS = "absurd_dimensions"
    UNSUPPORTED_PHOTOMETRIC = "unsupported_photometric"
    NOT_DICOM = "not_dicom"
    TRUNCATED = "truncated"  # the file ends before the data it declares (an interrupted copy)


class RenderRejected(Exception):  # noqa: N818 (name fixed by the public API)
    """The instance is not renderable; `detail` names attributes and UIDs only, never PHI.

    Details are built from our own words, SOP class and transfer syntax UIDs, attribute names
    and numbers; decoder messages are not copied because they may quote element values.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
