"""The display attributes that apply to one frame, wherever the IOD keeps them.

Enhanced multi-frame objects (Enhanced CT/MR/XA, ...) move rescale, window and pixel spacing
into functional groups (PS3.3 C.7.6.16): per-frame values override shared ones, which
override the top level of classic images.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

DISPLAY_KEYWORDS = (
    "RescaleSlope",
    "RescaleIntercept",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
    "PresentationLUTShape",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
    "PixelRepresentation",
    "BitsStored",
    "PixelSpacing",
    "PixelAspectRatio",
    "ImagerPixelSpacing",
)
# Functional group macros that hold the keywords above.
_GROUP_MACROS = ("PixelValueTransformationSequence", "FrameVOILUTSequence", "PixelMeasuresSequence")


def _copy_from(target: Dataset, source: Dataset) -> None:
    for keyword in DISPLAY_KEYWORDS:
        if keyword in source:
            target[keyword] = source[keyword]


def _copy_groups(target: Dataset, groups: Dataset) -> None:
    for macro in _GROUP_MACROS:
        sequence = groups.get(macro)
        if sequence:
            _copy_from(target, sequence[0])


def display_attributes(ds: Dataset, frame: int) -> Dataset:
    """The display keywords effective for `frame`: `ds` itself for classic images, else a
    small dataset merging top level, shared and per-frame groups (never modifies `ds`)."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not shared and not per_frame:
        return ds
    attrs = Dataset()
    _copy_from(attrs, ds)
    if shared:
        _copy_groups(attrs, shared[0])
    if per_frame and frame < len(per_frame):
        _copy_groups(attrs, per_frame[frame])
    return attrs
