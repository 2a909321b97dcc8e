"""modules/observability.py alone: metrics on the telemetry contract's events, alert policies to
every e-mail channel, a dashboard on the same metrics."""

from __future__ import annotations

import json
from typing import Any

from constructs import Construct
from imaging_pipeline.telemetry import EVENT_METRICS, Event

from modules.observability import Observability
from tests.support.scratch_stack import synth

EMAILS = ("oncall@example.org", "radiology-it@example.org")


def build(scope: Construct) -> dict[str, Any]:
    Observability(
        scope,
        "observability",
        prefix="imaging_dev",
        processor_service="imaging-dev-process",
        function_services=("imaging-dev-process", "imaging-dev-ingest"),
        dead_letter_subscription="imaging-dev-process-dead-letter",
        emails=EMAILS,
        failure_ratio=0.05,
        window_seconds=900,
        labels={"environment": "dev"},
    )
    return {}


def test_metrics_count_the_contracts_events_with_its_labels() -> None:
    out = synth(build)
    metrics = {m.body["name"]: m.body for m in out.of_type("google_logging_metric")}
    assert set(metrics) == {f"imaging_dev_{m.key}" for m in EVENT_METRICS}
    for spec in EVENT_METRICS:
        metric = metrics[f"imaging_dev_{spec.key}"]
        assert 'resource.labels.service_name="imaging-dev-process"' in metric["filter"]
        for event in spec.events:
            assert f'"{event.value}"' in metric["filter"]
        labels = metric["metric_descriptor"].get("labels", [])
        assert [label["key"] for label in labels] == list(spec.labels)
        assert metric.get("label_extractors", {}) == {
            k: f"EXTRACT(jsonPayload.{k})" for k in spec.labels
        }
    assert f'"{Event.INSTANCE_RETRY.value}"' not in metrics["imaging_dev_handled"]["filter"]


def test_alert_policies_notify_every_channel() -> None:
    out = synth(build)
    channels = out.of_type("google_monitoring_notification_channel")
    assert sorted(c.body["labels"]["email_address"] for c in channels) == sorted(EMAILS)
    channel_ids = sorted(out.ref(c, "id") for c in channels)
    policies = out.of_type("google_monitoring_alert_policy")
    assert len(policies) == 4
    for policy in policies:
        assert sorted(policy.body["notification_channels"]) == channel_ids
    filters = " ".join(p.body["conditions"][0]["condition_threshold"]["filter"] for p in policies)
    assert 'subscription_id="imaging-dev-process-dead-letter"' in filters
    assert '"imaging-dev-ingest"' in filters
    assert out.bindings() == set()


def test_dashboard_charts_the_same_metrics() -> None:
    out = synth(build)
    dashboard = json.loads(out.one("google_monitoring_dashboard").body["dashboard_json"])
    filters = [
        tile["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
        for tile in dashboard["mosaicLayout"]["tiles"]
    ]
    for key in ("processed", "skipped", "failed", "critical_findings"):
        assert any(f'/imaging_dev_{key}"' in f for f in filters), key
