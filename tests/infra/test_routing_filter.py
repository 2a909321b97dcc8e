"""The processor's push subscription carries the environment's filter (built in
imaging_pipeline.notification_filter, whose unit tests cover the expression itself)."""

from __future__ import annotations

from typing import Any

from imaging_pipeline.notification_filter import push_subscription_filter

from tests.infra.synthesized import of_type


def test_the_prod_subscription_carries_the_filter(stacks: dict[str, dict[str, Any]]) -> None:
    from stacks.config import load_environment
    from tests.infra.conftest import ROOT

    prod = load_environment(ROOT / "environments" / "prod.yaml")
    [push] = [
        r
        for r in of_type(stacks["prod"], "google_pubsub_subscription")
        if r.body.get("push_config")
    ]
    assert push.body["filter"] == push_subscription_filter(prod.config.pipeline)
    assert push.body["filter"].startswith('NOT attributes.modality = "SR" AND ')
    assert 'NOT attributes.modality = "CT"' in push.body["filter"]
