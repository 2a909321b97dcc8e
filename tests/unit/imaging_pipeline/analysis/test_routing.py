"""Per-modality routing: which analyzer (and which Vision features) each modality gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from imaging_pipeline.adapters.vertex import VertexAnalyzer, predict_url
from imaging_pipeline.adapters.vision import VisionAnalyzer, annotate_body, annotate_request
from imaging_pipeline.analysis import AnalyzerRouter, make_analyzer
from imaging_pipeline.analysis.local import LocalAnalyzer
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.settings import PipelineSettings, VertexSettings, VisionFeature
from pydantic import ValidationError

ENDPOINT = "projects/imaging-test/locations/europe-west4/endpoints/77"
ROUTED = {
    "analyzer": "vision",
    "vision": {"features": ["text"]},
    "routes": {
        "dx": {"analyzer": "vertex", "vertex": {"endpoint": ENDPOINT}},
        "CR": {"analyzer": "vision", "vision_features": ["labels", "text"]},
        "CT": {"analyzer": "none"},
        "MR": {"analyzer": "local"},
    },
}


def test_each_modality_gets_its_route_and_the_rest_the_default() -> None:
    settings = PipelineSettings.model_validate(ROUTED)
    router = AnalyzerRouter(settings)
    dx, cr, us = (router.for_modality(m) for m in ("DX", "CR", "US"))
    assert isinstance(dx, VertexAnalyzer) and dx.url == predict_url(settings.routes["DX"].vertex)  # type: ignore[arg-type]
    assert isinstance(cr, VisionAnalyzer) and cr.features == ("labels", "text")
    assert isinstance(us, VisionAnalyzer) and us.features == ("text",)
    assert router.for_modality("CT") is None
    assert isinstance(router.for_modality("mr"), LocalAnalyzer)
    assert router.for_modality(None) is us  # no modality known: the default route


def test_vision_requests_carry_only_the_routed_features() -> None:
    body = annotate_request(b"x", 5, ("text",))
    assert body["requests"][0]["features"] == [{"type": "TEXT_DETECTION"}]
    body = annotate_request(b"x", 5, ("labels", "objects"))
    assert [f["type"] for f in body["requests"][0]["features"]] == [
        "LABEL_DETECTION",
        "OBJECT_LOCALIZATION",
    ]


def test_predict_urls_shared_dedicated_and_local() -> None:
    shared = VertexSettings(endpoint=ENDPOINT)
    assert predict_url(shared) == (
        f"https://europe-west4-aiplatform.googleapis.com/v1/{ENDPOINT}:predict"
    )
    dedicated = VertexSettings(
        endpoint=ENDPOINT, dedicated_domain="77.europe-west4-123.prediction.vertexai.goog"
    )
    assert predict_url(dedicated).startswith(
        "https://77.europe-west4-123.prediction.vertexai.goog/v1/"
    )
    assert predict_url(shared, "http://127.0.0.1:9/").startswith("http://127.0.0.1:9/v1/projects/")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"analyzer": "vertex"}, "'vision', 'local' or 'none'"),
        ({"routes": {"DX": {"analyzer": "vertex"}}}, "needs 'vertex'"),
        (
            {"routes": {"DX": {"analyzer": "none", "vertex": {"endpoint": ENDPOINT}}}},
            "only applies",
        ),
        ({"routes": {"DX": {"analyzer": "local", "vision_features": ["text"]}}}, "only applies"),
        ({"routes": {"SR": {"analyzer": "none"}}}, "non-image"),
        ({"routes": {"ECG": {"analyzer": "none"}}}, "not in 'modalities'"),
        ({"routes": {"dx": {"analyzer": "none"}, "DX": {"analyzer": "none"}}}, "routed twice"),
        ({"vision": {"features": ["text", "text"]}}, "once"),
        ({"vision": {"features": []}}, "at least 1"),
        ({"vision": {"features": ["faces"]}}, "labels"),
        (
            {
                "routes": {
                    "DX": {
                        "analyzer": "vertex",
                        "vertex": {"endpoint": ENDPOINT, "output": "zero_shot"},
                    }
                }
            },
            "needs 'labels'",
        ),
        (
            {"routes": {"DX": {"analyzer": "vertex", "vertex": {"endpoint": "endpoints/1"}}}},
            "pattern",
        ),
    ],
)
def test_bad_routes_are_refused_with_a_reason(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PipelineSettings.model_validate(settings)


def test_imaging_analyze_default_route() -> None:
    assert isinstance(make_analyzer(PipelineSettings(analyzer="local")), LocalAnalyzer)
    with pytest.raises(ValueError, match="none"):
        make_analyzer(PipelineSettings(analyzer="none"))


class _NoRetrieval:
    def retrieve_instance(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a modality routed to none must not be retrieved")


def test_a_none_route_skips_before_retrieval() -> None:
    from imaging_pipeline.events import parse_event
    from imaging_pipeline.process import Processor
    from imaging_pipeline.runtime_env import ProcessorConfig
    from imaging_pipeline.telemetry import SKIP_REASONS

    from tests.support.process import LOCAL_STORE, pubsub_message, push_envelope

    config = ProcessorConfig(
        dicomweb_url="http://127.0.0.1:1/dicom-web",
        dicom_store=LOCAL_STORE,
        fhir_base_url="http://127.0.0.1:1/fhir",
        alerts_topic="projects/local-project/topics/alerts",
        pipeline=PipelineSettings.model_validate(ROUTED),
        environment="test",
        log_level="INFO",
    )
    processor = Processor(config, dicomweb=_NoRetrieval())
    path = f"{LOCAL_STORE}/dicomWeb/studies/1.2/series/1.2.3/instances/1.2.3.4"
    message = pubsub_message(path, {"action": "StoreInstances", "modality": "CT"})
    with pytest.raises(PermanentError) as caught:
        processor.handle(parse_event(push_envelope(message)))
    assert caught.value.reason == "not_analyzed" and "not_analyzed" in SKIP_REASONS


@pytest.mark.parametrize(
    "features", [("text",), ("labels", "objects"), ("labels", "objects", "text")]
)
@pytest.mark.parametrize("image", [b"", b"x", bytes(range(256)) * 300])
def test_the_request_body_is_the_json_of_the_request(
    features: tuple[VisionFeature, ...], image: bytes
) -> None:
    body = annotate_body(image, 7, features)
    assert body == json.dumps(annotate_request(image, 7, features), allow_nan=False).encode()
