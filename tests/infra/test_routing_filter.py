"""The processor subscription skips, by filter, the modalities the environment never analyzes."""

from __future__ import annotations

from typing import Any

from imaging_pipeline.settings import PipelineSettings

from stacks.routing_filter import MAX_FILTER_BYTES, subscription_filter
from tests.infra.synthesized import of_type


def test_none_routes_come_first_then_non_image_modalities_within_the_limit() -> None:
    settings = PipelineSettings.model_validate(
        {"routes": {m: {"analyzer": "none"} for m in ("CT", "MR", "NM", "PT", "MG")}}
    )
    expression = subscription_filter(settings)
    assert expression is not None
    assert expression.startswith(
        'NOT attributes.modality = "CT" AND NOT attributes.modality = "MG"'
    )
    assert 'NOT attributes.modality = "SR"' in expression
    assert len(expression.encode()) <= MAX_FILTER_BYTES


def test_only_negative_terms_so_messages_without_attributes_still_pass() -> None:
    expression = subscription_filter(PipelineSettings()) or ""
    terms = expression.split(" AND ")
    assert terms and all(t.startswith("NOT attributes.modality = ") for t in terms)


def test_the_prod_subscription_carries_the_filter(stacks: dict[str, dict[str, Any]]) -> None:
    from stacks.config import load_environment
    from tests.infra.conftest import ROOT

    prod = load_environment(ROOT / "environments" / "prod.yaml")
    subscriptions = [
        r
        for r in of_type(stacks["prod"], "google_pubsub_subscription")
        if r.body.get("push_config")
    ]
    [push] = subscriptions
    assert push.body["filter"] == subscription_filter(prod.config.pipeline)
    assert 'NOT attributes.modality = "CT"' in push.body["filter"]
