"""Contract tests of the Vertex AI analyzer against a local server speaking `:predict`.

The server (imaging_dev.servers.vertex_server) rejects, with Google's 400 error body, any
instance that does not match the published request-instance schema of Google's open health
models (MedSigLIP's vertex_schemata/instance.yaml, restated in that module's docstring).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from imaging_pipeline.adapters.vertex import VertexAnalyzer, predict_url
from imaging_pipeline.errors import PermanentError, TransientError
from imaging_pipeline.render import RenderedImage
from imaging_pipeline.settings import VertexSettings
from PIL import Image

from imaging_dev.servers.vertex_server import SchemaError, VertexServer, validate_instance

pytestmark = pytest.mark.integration

ENDPOINT = "projects/imaging-test/locations/us-central1/endpoints/4242"
DICOMWEB = (
    "https://healthcare.googleapis.com/v1/projects/imaging-test/locations/us-central1/"
    "datasets/d/dicomStores/s/dicomWeb"
)
INSTANCE_URL = f"{DICOMWEB}/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5"


@pytest.fixture(scope="module")
def classifier() -> Iterator[VertexServer]:
    with VertexServer("classification", endpoints=(ENDPOINT,)) as server:
        yield server


@pytest.fixture(scope="module")
def embedder() -> Iterator[VertexServer]:
    with VertexServer("zero_shot", endpoints=(ENDPOINT,)) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(classifier: VertexServer, embedder: VertexServer) -> None:
    classifier.reset()
    embedder.reset()


def rendered() -> RenderedImage:
    pixels = np.random.default_rng(0).integers(0, 255, (64, 80), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return RenderedImage(
        data=buffer.getvalue(),
        media_type="image/jpeg",
        width=80,
        height=64,
        rows=64,
        columns=80,
        frames=1,
        frame=0,
        photometric="MONOCHROME2",
        window=None,
        pixels=pixels,
    )


def analyzer(server: VertexServer, attempts: int = 3, **settings: object) -> VertexAnalyzer:
    config = VertexSettings.model_validate(
        {"endpoint": ENDPOINT, "max_attempts": attempts, "timeout_seconds": 10, **settings}
    )
    return VertexAnalyzer(config, api_base=server.url, token_source=lambda: "ya29.local-token")


def test_pixel_mode_sends_the_rendered_image_and_maps_labels(classifier: VertexServer) -> None:
    classifier.respond_with(labels=[("Pneumothorax", 0.91), ("Normal", 0.07)])
    findings = analyzer(classifier).analyze(rendered())
    [instance] = classifier.instances
    assert (instance.endpoint, instance.source, instance.image_size) == (
        ENDPOINT,
        "input_bytes",
        (80, 64),
    )
    assert not instance.has_credential  # the schema forbids a credential with input_bytes
    assert [(f.kind, f.description, f.score) for f in findings] == [
        ("label", "pneumothorax", 0.91),
        ("label", "normal", 0.07),
    ]


def test_boxes_become_object_findings(classifier: VertexServer) -> None:
    classifier.respond_with(labels=[("nodule", 0.8)], boxes=[(0.1, 0.2, 0.3, 0.4)])
    [finding] = analyzer(classifier).analyze(rendered())
    assert (finding.kind, finding.description, finding.box) == (
        "object",
        "nodule",
        (0.1, 0.2, 0.3, 0.4),
    )


def test_dicomweb_mode_sends_the_instance_url_and_the_functions_token(
    classifier: VertexServer,
) -> None:
    classifier.respond_with(labels=[("effusion", 0.6)])
    vertex = analyzer(classifier, input="dicomweb")
    assert vertex.reads_source
    findings = vertex.analyze_source(INSTANCE_URL)
    [instance] = classifier.instances
    assert (instance.source, instance.dicomweb_uri, instance.has_credential) == (
        "dicomweb_uri",
        INSTANCE_URL,
        True,
    )
    assert [f.description for f in findings] == ["effusion"]


def test_dicomweb_mode_refuses_a_plain_http_source(classifier: VertexServer) -> None:
    with pytest.raises(PermanentError):
        analyzer(classifier, input="dicomweb").analyze_source("http://127.0.0.1:1/dicom-web/x")
    assert classifier.calls == 0


def test_zero_shot_scores_each_label_like_siglip(embedder: VertexServer) -> None:
    embedder.respond_with(similarity={"pneumothorax": 0.9, "pleural effusion": 0.2})
    labels = ["pneumothorax", "pleural effusion", "normal chest"]
    findings = analyzer(embedder, output="zero_shot", labels=labels).analyze(rendered())
    kinds = [i.kind for i in embedder.instances]
    assert kinds == ["image", "text", "text", "text"]
    assert [i.text for i in embedder.instances[1:]] == labels
    expected = {
        "pneumothorax": 1 / (1 + math.exp(-(10 * 0.9 - 5))),
        "pleural effusion": 1 / (1 + math.exp(-(10 * 0.2 - 5))),
        "normal chest": 1 / (1 + math.exp(5)),
    }
    assert [f.description for f in findings] == labels  # best first
    for finding in findings:
        assert finding.kind == "label"
        assert finding.score == pytest.approx(expected[finding.description], rel=1e-9)


def test_429_and_5xx_are_retried(classifier: VertexServer) -> None:
    classifier.respond_with(labels=[("normal", 0.9)])
    classifier.fail_next(1, status=429, retry_after=0)
    classifier.fail_next(1, status=503)
    assert analyzer(classifier, attempts=3).analyze(rendered())
    assert classifier.calls == 3


def test_exhausted_retries_are_transient(classifier: VertexServer) -> None:
    classifier.fail_next(3, status=500)
    with pytest.raises(TransientError) as caught:
        analyzer(classifier, attempts=3).analyze(rendered())
    assert caught.value.dependency == "vertex"


def test_an_unknown_endpoint_is_permanent(classifier: VertexServer) -> None:
    other = VertexAnalyzer(
        VertexSettings(endpoint="projects/imaging-test/locations/us-central1/endpoints/9"),
        api_base=classifier.url,
    )
    with pytest.raises(PermanentError) as caught:
        other.analyze(rendered())
    assert caught.value.reason == "not_found"


def test_a_per_instance_model_error_is_permanent(classifier: VertexServer) -> None:
    bad = RenderedImage(**{**rendered().__dict__, "data": b"not an image"})
    with pytest.raises(PermanentError) as caught:
        analyzer(classifier).analyze(bad)
    assert caught.value.reason == "rejected_by_server"


def test_a_timeout_is_retried_then_transient() -> None:
    """A server that accepts but never answers: each attempt times out."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        port = listener.getsockname()[1]
        config = VertexSettings(endpoint=ENDPOINT, timeout_seconds=0.2, max_attempts=2)
        slow = VertexAnalyzer(config, api_base=f"http://127.0.0.1:{port}")
        with pytest.raises(TransientError):
            slow.analyze(rendered())
    finally:
        listener.close()


# --- the server really enforces the schema (else the tests above would prove little) -------


@pytest.mark.parametrize(
    "instance",
    [
        {"image": {"input_bytes": "aGVsbG8=", "access_credential": "token"}},
        {"image": {"dicomweb_uri": "http://host/studies/1/series/2/instances/3"}},
        {"image": {"dicomweb_uri": "https://host/studies/1/series/2"}},
        {
            "image": {
                "dicomweb_uri": "https://h/studies/1/series/2/instances/3",
                "gcs_uri": "gs://b/x.png",
            }
        },
        {"image": {"input_bytes": "not base64!"}},
        {"image": {"input_bytes": "aGVsbG8=", "pixels": [1]}},
        {
            "image": {
                "dicomweb_uri": "https://h/studies/1/series/2/instances/3",
                "access_credential": "a b",
            }
        },
        {"image": {"input_bytes": "aGVsbG8="}, "text": "both"},
        {"text": 3},
        {},
        {"image": {"gcs_uri": "gs://bucket/no-extension"}},
        {
            "image": {
                "image_url": "https://x/y.png",
                "patch_coordinates_list": [{"x_origin": -1, "y_origin": 0}],
            }
        },
    ],
)
def test_instances_outside_the_schema_are_rejected(
    classifier: VertexServer, instance: dict[str, object]
) -> None:
    with pytest.raises(SchemaError):
        validate_instance(instance)
    url = predict_url(VertexSettings(endpoint=ENDPOINT), classifier.url)
    response = requests.post(url, json={"instances": [instance]}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "instance",
    [
        {"image": {"input_bytes": base64.b64encode(b"x").decode()}},
        {"image": {"dicomweb_uri": INSTANCE_URL, "access_credential": "application_default"}},
        {"image": {"gcs_uri": "gs://bucket/dir/image.png"}},
        {
            "image": {
                "image_url": "https://example.org/a.png",
                "patch_coordinates_list": [{"x_origin": 0, "y_origin": 0, "width": 8}],
            }
        },
        {"text": "a chest X-ray with a pneumothorax"},
    ],
)
def test_instances_inside_the_schema_are_accepted(instance: dict[str, object]) -> None:
    validate_instance(instance)
