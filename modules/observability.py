"""Log-based metrics from the functions' structured logs, alert policies, e-mail channels and a
dashboard: the last row of the data-flow diagram.

Monitoring knows a new log-based metric only minutes after it was created ("could take up to 10
minutes", provider issue 11102), so alert policies on them wait (`metric_wait`). Every policy
closes its incident by itself (`auto_close`): the metrics are sparse, and an incident left open
would swallow the next notification. Critical findings alert on each matching log entry, at
most once per `notification_rate_limit`, so a second finding notifies again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from cdktn_provider_google.logging_metric import (
    LoggingMetric,
    LoggingMetricMetricDescriptorLabels,
)
from cdktn_provider_google.monitoring_alert_policy import (
    MonitoringAlertPolicy,
    MonitoringAlertPolicyConditions,
    MonitoringAlertPolicyConditionsConditionThresholdAggregations,
    MonitoringAlertPolicyConditionsConditionThresholdDenominatorAggregations,
)
from cdktn_provider_google.monitoring_dashboard import MonitoringDashboard
from cdktn_provider_google.monitoring_notification_channel import (
    MonitoringNotificationChannel,
)
from cdktn_provider_time.sleep import Sleep
from constructs import Construct
from imaging_pipeline.telemetry import EVENT_METRICS, Event

Aggregation = MonitoringAlertPolicyConditionsConditionThresholdAggregations
USER_METRIC = "logging.googleapis.com/user"
METRIC_WAIT = "600s"  # Monitoring's documented worst case for a new metric
# Where each alert's runbook lives, relative to the repository root; one section per policy key.
RUNBOOKS = "docs/runbooks.md"


def _event_filter(service: str, events: Sequence[str]) -> str:
    choice = " OR ".join(f'"{e}"' for e in events)
    return (
        f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}" '
        f"AND jsonPayload.event=({choice})"
    )


def _one_of(values: Sequence[str]) -> str:
    return "one_of(" + ", ".join(f'"{v}"' for v in values) + ")"


class Observability(Construct):
    """Metrics from the processor's logs; alerts on failure ratio, dead-letter backlog, any
    critical finding and function 5xx errors, sent to every e-mail address in `emails`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        prefix: str,
        processor_service: str,
        function_services: Sequence[str],
        dead_letter_subscriptions: Sequence[str],
        emails: Sequence[str],
        failure_ratio: float,
        window_seconds: int,
        auto_close_seconds: int,
        notification_rate_limit_seconds: int,
        labels: dict[str, str],
    ) -> None:
        super().__init__(scope, id_)
        self._auto_close = f"{auto_close_seconds}s"
        self.metrics: dict[str, LoggingMetric] = {}
        for metric in EVENT_METRICS:
            self.metrics[metric.key] = LoggingMetric(
                self,
                f"metric_{metric.key}",
                name=f"{prefix}_{metric.key}",
                description=metric.description,
                filter=_event_filter(processor_service, metric.events),
                metric_descriptor={
                    "metric_kind": "DELTA",
                    "value_type": "INT64",
                    "unit": "1",
                    "labels": [
                        LoggingMetricMetricDescriptorLabels(key=k, value_type="STRING")
                        for k in metric.labels
                    ],
                },
                label_extractors={k: f"EXTRACT(jsonPayload.{k})" for k in metric.labels},
            )
        # Created with the metrics; re-created (so waited for again) when a metric is renamed.
        self.metric_wait = Sleep(
            self,
            "metric_wait",
            create_duration=METRIC_WAIT,
            triggers={key: metric.name for key, metric in self.metrics.items()},
            depends_on=list(self.metrics.values()),
        )
        # Keyed by address (as config validation refuses duplicates): reordering the list keeps
        # every channel's address.
        self.channels = [
            MonitoringNotificationChannel(
                self,
                "email_" + re.sub(r"[^a-z0-9]+", "_", email.lower()),
                display_name=f"{prefix} alerts: {email}",
                type="email",
                labels={"email_address": email},
                user_labels=labels,
            )
            for email in emails
        ]
        window = f"{window_seconds}s"
        self.policies = [
            self._policy(
                "failure_ratio",
                f"{prefix}: failure ratio above {failure_ratio:.0%}",
                "ERROR",
                {
                    "filter": self._metric_filter("failed"),
                    "denominator_filter": self._metric_filter("handled"),
                    "aggregations": [self._aggregation(window)],
                    "denominator_aggregations": [
                        MonitoringAlertPolicyConditionsConditionThresholdDenominatorAggregations(
                            **self._sum(window)
                        )
                    ],
                    "comparison": "COMPARISON_GT",
                    "threshold_value": failure_ratio,
                    "duration": "0s",
                },
                labels,
            ),
            self._policy(
                "dead_letter_backlog",
                f"{prefix}: messages in the dead-letter queue",
                "ERROR",
                {
                    "filter": (
                        'resource.type="pubsub_subscription" AND resource.labels.'
                        f"subscription_id={_one_of(dead_letter_subscriptions)} AND metric.type="
                        '"pubsub.googleapis.com/subscription/num_undelivered_messages"'
                    ),
                    "aggregations": [
                        MonitoringAlertPolicyConditionsConditionThresholdAggregations(
                            alignment_period=window, per_series_aligner="ALIGN_MAX"
                        )
                    ],
                    "comparison": "COMPARISON_GT",
                    "threshold_value": 0,
                    "duration": "0s",
                },
                labels,
            ),
            self._log_match_policy(
                Event.CRITICAL_FINDING.value,
                f"{prefix}: critical finding",
                "CRITICAL",
                _event_filter(processor_service, (Event.CRITICAL_FINDING.value,)),
                f"{notification_rate_limit_seconds}s",
                labels,
            ),
            self._policy(
                "function_errors",
                f"{prefix}: function errors (HTTP 5xx)",
                "ERROR",
                {
                    "filter": (
                        'resource.type="cloud_run_revision" AND metric.type='
                        '"run.googleapis.com/request_count" AND metric.labels.'
                        'response_code_class="5xx" AND resource.labels.service_name=one_of('
                        + ", ".join(f'"{s}"' for s in function_services)
                        + ")"
                    ),
                    "aggregations": [self._aggregation(window)],
                    "comparison": "COMPARISON_GT",
                    "threshold_value": 0,
                    "duration": "0s",
                },
                labels,
            ),
        ]
        MonitoringDashboard(
            self,
            "dashboard",
            dashboard_json=json.dumps(
                self._dashboard(prefix, dead_letter_subscriptions), sort_keys=True
            ),
        )

    def _metric_filter(self, key: str) -> str:
        return (
            f'metric.type="{USER_METRIC}/{self.metrics[key].name}" '
            'AND resource.type="cloud_run_revision"'
        )

    def _aggregation(self, window: str) -> Aggregation:
        return Aggregation(**self._sum(window))

    @staticmethod
    def _sum(window: str) -> dict[str, Any]:
        return {
            "alignment_period": window,
            "per_series_aligner": "ALIGN_DELTA",
            "cross_series_reducer": "REDUCE_SUM",
        }

    def _policy(
        self, key: str, name: str, severity: str, threshold: dict[str, Any], labels: dict[str, str]
    ) -> MonitoringAlertPolicy:
        on_user_metric = USER_METRIC in str(threshold.get("filter", ""))
        return MonitoringAlertPolicy(
            self,
            f"alert_{key}",
            display_name=name,
            combiner="OR",
            severity=severity,
            conditions=[
                MonitoringAlertPolicyConditions(display_name=name, condition_threshold=threshold)
            ],
            alert_strategy={"auto_close": self._auto_close},
            notification_channels=[c.id for c in self.channels],
            documentation=self._runbook(key),
            user_labels=labels,
            depends_on=[self.metric_wait] if on_user_metric else None,
        )

    def _log_match_policy(
        self,
        key: str,
        name: str,
        severity: str,
        log_filter: str,
        rate_limit: str,
        labels: dict[str, str],
    ) -> MonitoringAlertPolicy:
        """Alerts on each matching log entry (no metric involved, so nothing to wait for)."""
        return MonitoringAlertPolicy(
            self,
            f"alert_{key}",
            display_name=name,
            combiner="OR",
            severity=severity,
            conditions=[
                MonitoringAlertPolicyConditions(
                    display_name=name, condition_matched_log={"filter": log_filter}
                )
            ],
            alert_strategy={
                "auto_close": self._auto_close,
                "notification_rate_limit": {"period": rate_limit},
            },
            notification_channels=[c.id for c in self.channels],
            documentation=self._runbook(key),
            user_labels=labels,
        )

    @staticmethod
    def _runbook(key: str) -> dict[str, str]:
        return {
            "content": f"Runbook: {RUNBOOKS}#alert-{key} (what it means, what to check "
            "first, log queries, how to fix).",
            "mime_type": "text/markdown",
        }

    @staticmethod
    def _dashboard(prefix: str, dead_letter_subscriptions: Sequence[str]) -> dict[str, Any]:
        def chart(
            title: str,
            metric_filter: str,
            group_by: Sequence[str] = (),
            aligner: str = "ALIGN_DELTA",
        ) -> dict[str, Any]:
            aggregation: dict[str, Any] = {
                "alignmentPeriod": "300s",
                "perSeriesAligner": aligner,
                "crossSeriesReducer": "REDUCE_SUM",
            }
            if group_by:
                aggregation["groupByFields"] = list(group_by)
            return {
                "title": title,
                "xyChart": {
                    "dataSets": [
                        {
                            "plotType": "STACKED_BAR",
                            "timeSeriesQuery": {
                                "timeSeriesFilter": {
                                    "filter": metric_filter,
                                    "aggregation": aggregation,
                                }
                            },
                        }
                    ]
                },
            }

        def user(key: str) -> str:
            return f'metric.type="{USER_METRIC}/{prefix}_{key}"'

        return {
            "displayName": f"{prefix} imaging pipeline",
            "mosaicLayout": {
                "columns": 12,
                "tiles": [
                    {"xPos": x, "yPos": y, "width": 6, "height": 4, "widget": widget}
                    for (x, y), widget in zip(
                        [(0, 0), (6, 0), (0, 4), (6, 4), (0, 8)],
                        [
                            chart(
                                "Processed by modality",
                                user("processed"),
                                ["metric.label.modality"],
                            ),
                            chart("Skipped by reason", user("skipped"), ["metric.label.reason"]),
                            chart("Failed by reason", user("failed"), ["metric.label.reason"]),
                            chart(
                                "Critical findings",
                                user("critical_findings"),
                                ["metric.label.modality"],
                            ),
                            chart(
                                "Dead-letter backlog",
                                'metric.type="pubsub.googleapis.com/subscription/'
                                'num_undelivered_messages" AND resource.labels.subscription_id='
                                f"{_one_of(dead_letter_subscriptions)}",
                                aligner="ALIGN_MAX",
                            ),
                        ],
                        strict=True,
                    )
                ],
            },
        }
