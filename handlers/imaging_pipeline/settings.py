"""Pipeline settings shared by the function (read from its environment) and the stack schema.

The stack validates them per environment at synth time and passes them to the function as
JSON in `PIPELINE_SETTINGS`, so a bad rule fails `cdktf synth`, not a production event.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Priority = Literal["routine", "urgent", "critical"]
FindingKind = Literal["burned_in_text", "label", "object", "text", "blank_image", "exposure"]

# Modalities whose objects carry no image to analyze (or are our own outputs); never processed.
NON_IMAGE_MODALITIES = frozenset({"SR", "SEG", "PR", "KO", "DOC", "RTSTRUCT", "RTPLAN", "RTDOSE",
                                  "RTRECORD", "REG", "FID", "OT_PDF"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """Turns a finding into a priority: the highest priority of all matching rules wins."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_-]*$")
    finding: FindingKind
    terms: tuple[str, ...] = Field(
        default=(), description="Case-insensitive terms a label/object/text finding must match."
    )
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    priority: Priority

    @field_validator("terms")
    @classmethod
    def _lower(cls, terms: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in terms if t.strip())


class RenderSettings(_Strict):
    max_size: int = Field(default=1024, ge=64, le=8192, description="Longest side in pixels.")
    format: Literal["jpeg", "png"] = "jpeg"


class PipelineSettings(_Strict):
    analyzer: Literal["vision", "local"] = Field(
        default="vision", description="Cloud Vision in the cloud; the offline analyzer locally."
    )
    modalities: tuple[str, ...] = Field(
        default=("CT", "MR", "CR", "DX", "MG", "US", "XA", "RF", "NM", "PT", "OT", "SC", "XC"),
        description="Modality allow-list; non-image objects are always skipped.",
    )
    render: RenderSettings = RenderSettings()
    rules: tuple[Rule, ...] = (
        Rule(name="burned-in-text", finding="burned_in_text", min_score=0.6, priority="urgent"),
        Rule(name="blank-image", finding="blank_image", min_score=0.9, priority="urgent"),
    )

    @field_validator("modalities")
    @classmethod
    def _image_modalities(cls, modalities: tuple[str, ...]) -> tuple[str, ...]:
        upper = tuple(m.strip().upper() for m in modalities)
        bad = sorted(set(upper) & NON_IMAGE_MODALITIES)
        if bad:
            raise ValueError(f"non-image modalities cannot be analyzed: {', '.join(bad)}")
        return upper
