"""SOP classes that carry no image to render (the process function's filter reuses these)."""

from __future__ import annotations

_STORAGE = "1.2.840.10008.5.1.4.1.1."

# Every Structured Report class lives under this root, including ones newer than this list.
SR_ROOT = _STORAGE + "88."

_SR = {
    "88.1",
    "88.2",
    "88.3",
    "88.4",  # retired SR trial classes (text, audio, detail, comprehensive)
    "88.11",
    "88.22",
    "88.33",
    "88.34",
    "88.35",  # basic text, enhanced, comprehensive (3D), ext.
    "88.40",
    "88.50",
    "88.59",
    "88.65",
    "88.67",
    "88.68",
    "88.69",
    "88.70",
    "88.71",
    "88.72",
    "88.73",
    "88.74",
    "88.75",
    "88.76",
    "88.77",  # procedure log, CAD, KOS, dose and other SRs
}
_SEGMENTATION_AND_SPATIAL = {
    "66",
    "66.1",
    "66.2",
    "66.3",
    "66.4",
    "66.5",
    "66.6",
    "66.7",
}  # raw data, registration, fiducials, segmentations, tractography, label maps
_RT_NON_IMAGE = {  # everything RT except RT Image (481.1) and Enhanced (Continuous) RT Image
    "481.2",
    "481.3",
    "481.4",
    "481.5",
    "481.6",
    "481.7",
    "481.8",
    "481.9",
    "481.10",
    "481.11",
    "481.12",
    "481.13",
    "481.14",
    "481.15",
    "481.16",
    "481.17",
    "481.18",
    "481.19",
    "481.20",
    "481.21",
    "481.22",
    "481.25",
}
_PRESENTATION_STATES = {f"11.{n}" for n in range(1, 13)}
_ENCAPSULATED = {"104.1", "104.2", "104.3", "104.4", "104.5"}  # PDF, CDA, STL, OBJ, MTL
_WAVEFORMS = {
    "9.1.1",
    "9.1.2",
    "9.1.3",
    "9.1.4",
    "9.2.1",
    "9.3.1",
    "9.4.1",
    "9.4.2",
    "9.5.1",
    "9.6.1",
    "9.6.2",
    "9.7.1",
    "9.7.2",
    "9.7.3",
    "9.7.4",
    "9.8.1",
}
_OTHER = {
    "67",  # real world value mapping
    "68.1",
    "68.2",  # surface scan mesh and point cloud
    "78.1",
    "78.2",
    "78.3",
    "78.4",
    "78.5",
    "78.6",
    "78.7",
    "78.8",
    "79.1",
    "80.1",  # ophthalmic measurements and reports (thickness and topography maps are images)
    "200.1",
    "200.2",
    "200.3",
    "200.7",
    "200.8",  # defined/performed procedure protocols
}
_OUTSIDE_STORAGE_ROOT = {
    "1.2.840.10008.5.1.4.34.7",  # RT Beams Delivery Instruction
    "1.2.840.10008.5.1.4.34.10",  # RT Brachy Application Setup Delivery Instruction
    "1.2.840.10008.5.1.4.38.1",  # Hanging Protocol
    "1.2.840.10008.5.1.4.39.1",  # Color Palette
}

NON_IMAGE_SOP_CLASSES: frozenset[str] = frozenset(
    {
        _STORAGE + suffix
        for group in (
            _SR,
            _SEGMENTATION_AND_SPATIAL,
            _RT_NON_IMAGE,
            _PRESENTATION_STATES,
            _ENCAPSULATED,
            _WAVEFORMS,
            _OTHER,
        )
        for suffix in group
    }
    | _OUTSIDE_STORAGE_ROOT
)


def is_image_sop_class(uid: str) -> bool:
    """False for SOP classes known to carry no renderable image (unknown classes pass)."""
    uid = str(uid).strip()
    return uid not in NON_IMAGE_SOP_CLASSES and not uid.startswith(SR_ROOT)
