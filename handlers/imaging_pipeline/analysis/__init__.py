"""Image analysis behind one interface: Cloud Vision in the cloud, an offline analyzer locally."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imaging_pipeline.analysis.base import Analyzer, Finding

if TYPE_CHECKING:
    from imaging_pipeline.settings import PipelineSettings

__all__ = ["Analyzer", "Finding", "make_analyzer"]


def make_analyzer(settings: PipelineSettings, vision_endpoint: str | None = None) -> Analyzer:
    """The analyzer the settings choose; each implementation imports its heavy libraries lazily."""
    if settings.analyzer == "local":
        from imaging_pipeline.analysis.local import LocalAnalyzer

        return LocalAnalyzer(settings.local_analyzer)
    from imaging_pipeline.adapters.vision import VisionAnalyzer

    return VisionAnalyzer(settings.vision, endpoint=vision_endpoint)
