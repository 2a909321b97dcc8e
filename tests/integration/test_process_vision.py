"""Contract tests of the Cloud Vision analyzer against a local server speaking the REST protocol."""

from __future__ import annotations

import io

import numpy as np
import pytest
from imaging_pipeline.adapters.vision import VisionAnalyzer
from imaging_pipeline.errors import PermanentError, TransientError
from imaging_pipeline.render import RenderedImage
from imaging_pipeline.settings import VisionSettings
from PIL import Image

from imaging_dev.servers.vision_server import VisionServer

pytestmark = pytest.mark.integration


def rendered(blank: bool = False) -> RenderedImage:
    pixels = (
        np.zeros((64, 80), np.uint8)
        if blank
        else np.random.default_rng(0).integers(0, 255, (64, 80), dtype=np.uint8)
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return RenderedImage(
        data=buffer.getvalue(),
        media_type="image/png",
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


def analyzer(server: VisionServer, attempts: int = 3) -> VisionAnalyzer:
    return VisionAnalyzer(
        VisionSettings(max_attempts=attempts, timeout_seconds=10), endpoint=server.url
    )


def test_one_request_carries_three_features(vision_server: VisionServer) -> None:
    analyzer(vision_server, attempts=1).analyze(rendered())
    [request] = vision_server.requests
    assert [f for f, _ in request.features] == [
        "LABEL_DETECTION",
        "OBJECT_LOCALIZATION",
        "TEXT_DETECTION",
    ]
    assert request.image_size == (80, 64)
    assert vision_server.calls == 1


def test_answers_map_to_findings(vision_server: VisionServer) -> None:
    vision_server.respond_with(
        labels=[("Fracture", 0.93), ("X-ray", 0.8)], objects=[("Scalpel", 0.7)], text="PORTABLE AP"
    )
    findings = analyzer(vision_server).analyze(rendered())
    by_kind = {(f.kind, f.description): f for f in findings}
    assert by_kind[("label", "fracture")].score == pytest.approx(0.93)
    assert by_kind[("object", "scalpel")].box is not None
    text = by_kind[("burned_in_text", "burned-in text (2 words)")]
    assert text.words == ("portable", "ap")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_then_succeeds(vision_server: VisionServer, status: int) -> None:
    vision_server.respond_with(labels=[("Radiography", 0.9)])
    vision_server.fail_next(2, status)
    findings = analyzer(vision_server, attempts=3).analyze(rendered())
    assert [f.description for f in findings] == ["radiography"]
    assert vision_server.calls == 3


def test_exhausted_retries_are_transient(vision_server: VisionServer) -> None:
    vision_server.fail_next(3, 503)
    with pytest.raises(TransientError, match="HTTP 503 after 2 attempts"):
        analyzer(vision_server, attempts=2).analyze(rendered())


def test_bad_image_is_permanent(vision_server: VisionServer) -> None:
    image = rendered()
    broken = RenderedImage(**{**image.__dict__, "data": b"not an image"})
    with pytest.raises(PermanentError) as err:
        analyzer(vision_server).analyze(broken)
    assert err.value.reason == "rejected_by_server"
