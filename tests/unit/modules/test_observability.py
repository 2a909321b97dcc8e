"""modules/observability.py alone: metrics on the telemetry contract's events, alert policies to
every e-mail channel that close by themselves (metric alerts after the new metrics are known,
critical findings on each log entry), a dashboard on the same metrics."""

from __future__ import annotations

import json
from typing import Any

from constructs import Construct
from imaging_pipeline.telemetry import EVENT_METRICS, Event

from modules.observability import METRIC_WAIT, Observability
from tests.support.scratch_stack import Synthesized, synth

EMAILS = ("oncall@example.org", "radiology-it@example.org")
DEAD_LETTERS = ("imaging-dev-process-dead-letter", "imaging-dev-critical-inbox-dead-letter")


def build(scope: Construct) -> dict[str, Any]:
    Observability(
        scope,
        "observability",
        prefix="imaging_dev",
        processor_service="imaging-dev-process",
        function_services=("imaging-dev-process", "imaging-dev-ingest"),
        dead_letter_subscriptions=DEAD_LETTERS,
        emails=EMAILS,
        failure_ratio=0.05,
        window_seconds=900,
        auto_close_seconds=1800,
        notification_rate_limit_seconds=300,
        labels={"environment": "dev"},
    )
    return {}


def _policies(out: Synthesized) -> dict[str, dict[str, Any]]:
    """Alert policies by key (`alert_<key>` in the construct path)."""
    found = out.of_type("google_monitoring_alert_policy")
    return {p.key.rsplit("_", 1)[0].removeprefix("observability_alert_"): p.body for p in found}


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


def test_alert_policies_notify_every_channel_and_close_by_themselves() -> None:
    out = synth(build)
    channels = out.of_type("google_monitoring_notification_channel")
    assert sorted(c.body["labels"]["email_address"] for c in channels) == sorted(EMAILS)
    channel_ids = sorted(out.ref(c, "id") for c in channels)
    policies = _policies(out)
    critical = Event.CRITICAL_FINDING.value
    assert set(policies) == {"failure_ratio", "dead_letter_backlog", critical, "function_errors"}
    for policy in policies.values():
        assert sorted(policy["notification_channels"]) == channel_ids
        assert policy["alert_strategy"]["auto_close"] == "1800s"
    backlog = policies["dead_letter_backlog"]["conditions"][0]["condition_threshold"]["filter"]
    assert all(f'"{name}"' in backlog for name in DEAD_LETTERS)
    errors = policies["function_errors"]["conditions"][0]["condition_threshold"]["filter"]
    assert '"imaging-dev-process"' in errors and '"imaging-dev-ingest"' in errors
    # A critical finding alerts on each log entry (no metric, no threshold), rate-limited.
    [condition] = policies[critical]["conditions"]
    assert "condition_threshold" not in condition
    assert f'"{critical}"' in condition["condition_matched_log"]["filter"]
    assert 'service_name="imaging-dev-process"' in condition["condition_matched_log"]["filter"]
    assert policies[critical]["alert_strategy"]["notification_rate_limit"] == {"period": "300s"}
    assert policies[critical]["severity"] == "CRITICAL"
    assert out.bindings() == set()


def test_alerts_on_new_metrics_wait_until_monitoring_knows_them() -> None:
    out = synth(build)
    wait = out.one("time_sleep")
    metrics = out.of_type("google_logging_metric")
    assert wait.body["create_duration"] == METRIC_WAIT
    assert sorted(wait.body["depends_on"]) == sorted(m.address for m in metrics)
    # Renaming a metric re-creates the wait, so the alerts wait again.
    assert sorted(wait.body["triggers"].values()) == sorted(out.ref(m, "name") for m in metrics)
    policies = _policies(out)
    assert policies["failure_ratio"]["depends_on"] == [wait.address]
    for key in ("dead_letter_backlog", Event.CRITICAL_FINDING.value, "function_errors"):
        assert "depends_on" not in policies[key], key  # on built-in metrics or logs: no wait


def test_dashboard_charts_the_same_metrics() -> None:
    out = synth(build)
    dashboard = json.loads(out.one("google_monitoring_dashboard").body["dashboard_json"])
    filters = [
        tile["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
        for tile in dashboard["mosaicLayout"]["tiles"]
    ]
    for key in ("processed", "skipped", "failed", "critical_findings"):
        assert any(f'/imaging_dev_{key}"' in f for f in filters), key
    assert any(all(f'"{name}"' in f for name in DEAD_LETTERS) for f in filters)
