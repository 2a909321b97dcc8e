"""Image analysis behind one interface: Cloud Vision or a Vertex AI model in the cloud, an
offline analyzer locally; which one (and which Vision features) is chosen per modality."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imaging_pipeline.analysis.base import Analyzer, Finding

if TYPE_CHECKING:
    from imaging_pipeline.settings import ModalityRoute, PipelineSettings

__all__ = ["Analyzer", "AnalyzerRouter", "Finding", "make_analyzer"]


def make_route_analyzer(
    settings: PipelineSettings,
    route: ModalityRoute,
    *,
    vision_endpoint: str | None = None,
    vertex_api_base: str | None = None,
) -> Analyzer | None:
    """The analyzer of one route (None for `none`); heavy libraries are imported lazily."""
    if route.analyzer == "none":
        return None
    if route.analyzer == "local":
        from imaging_pipeline.analysis.local import LocalAnalyzer

        return LocalAnalyzer(settings.local_analyzer)
    if route.analyzer == "vertex":
        from imaging_pipeline.adapters.vertex import VertexAnalyzer

        assert route.vertex is not None  # guaranteed by the settings schema
        return VertexAnalyzer(route.vertex, api_base=vertex_api_base)
    from imaging_pipeline.adapters.vision import VisionAnalyzer

    return VisionAnalyzer(
        settings.vision, endpoint=vision_endpoint, features=settings.vision_features_for(route)
    )


def make_analyzer(settings: PipelineSettings, vision_endpoint: str | None = None) -> Analyzer:
    """The analyzer of modalities without a route (what `imaging analyze` uses)."""
    analyzer = make_route_analyzer(
        settings, settings.route_for(None), vision_endpoint=vision_endpoint
    )
    if analyzer is None:
        raise ValueError("pipeline.analyzer is 'none': nothing analyzes images")
    return analyzer


class AnalyzerRouter:
    """One analyzer per distinct route, built up front: after construction nothing changes,
    so the instance's concurrent requests share it without locks."""

    def __init__(
        self,
        settings: PipelineSettings,
        *,
        vision_endpoint: str | None = None,
        vertex_api_base: str | None = None,
    ) -> None:
        self.settings = settings
        routes = {settings.route_for(None), *settings.routes.values()}
        self._analyzers = {
            route: make_route_analyzer(
                settings, route, vision_endpoint=vision_endpoint, vertex_api_base=vertex_api_base
            )
            for route in routes
        }

    def for_modality(self, modality: str | None) -> Analyzer | None:
        """The modality's analyzer; None when its route is `none` (not analyzed)."""
        return self._analyzers[self.settings.route_for(modality)]

    @property
    def names(self) -> frozenset[str]:
        """The names of every analyzer a route uses (what the SRs they write are keyed by)."""
        return frozenset(a.name for a in self._analyzers.values() if a is not None)
