"""The findings schema both analyzers produce, and the analyzer interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from imaging_pipeline.render import RenderedImage
    from imaging_pipeline.settings import FindingKind


@dataclass(frozen=True)
class Finding:
    """One observation about an image.

    `description` is a label/object name or a fixed phrase, never text read from the image:
    burned-in text may be a patient's name, so the recognised words stay in `words` (lowercase,
    used only by `text` rules in this process) and are excluded from `as_dict()`, logs, FHIR
    and alerts.
    """

    kind: FindingKind
    description: str
    score: float
    box: tuple[float, float, float, float] | None = None  # normalised x0, y0, x1, y1
    words: tuple[str, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "description": self.description,
            "score": round(self.score, 4),
        }
        if self.box is not None:
            out["box"] = [round(v, 4) for v in self.box]
        return out


class Analyzer(Protocol):
    """Turns a rendered image into findings; `name` and `version` identify it in FHIR (Device)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def analyze(self, image: RenderedImage) -> list[Finding]:
        """Raise `TransientError` when a remote dependency fails; findings otherwise."""
        ...


@runtime_checkable
class SourceAnalyzer(Protocol):
    """An analyzer whose model can read the instance itself from its DICOMweb URL."""

    @property
    def reads_source(self) -> bool: ...

    def analyze_source(self, instance_url: str) -> list[Finding]: ...
