"""Critical findings (clinical, not operations alert policies): one JSON message to the
critical-findings topic, and the log line a metric counts.

The message carries references and UIDs only (no names, birth dates or patient ids), so the
alert channel never needs to be PHI-cleared. Delivery is at least once: a redelivered event
publishes again (a lost alert is worse than a repeated one); `dedupe_key` (the report identifier)
lets consumers drop repeats.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imaging_pipeline.adapters.pubsub import publish
from imaging_pipeline.logs import log_event
from imaging_pipeline.rules import Match
from imaging_pipeline.telemetry import Event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    report: str  # "DiagnosticReport/id"
    report_identifier: str
    study_uid: str
    series_uid: str
    instance_uid: str
    modality: str
    environment: str
    matches: Sequence[Match]

    def payload(self) -> dict[str, Any]:
        ranked = sorted(self.matches, key=lambda m: m.finding.score, reverse=True)
        return {
            "report": self.report,
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "instance_uid": self.instance_uid,
            "modality": self.modality,
            "priority": "critical",
            "finding": {**ranked[0].finding.as_dict(), "rule": ranked[0].rule.name},
            "findings": [{**m.finding.as_dict(), "rule": m.rule.name} for m in ranked],
            "environment": self.environment,
            "dedupe_key": self.report_identifier,
        }


def publish_alert(topic: str, alert: Alert) -> str:
    """Publish and log the critical finding; returns the Pub/Sub message id."""
    payload = alert.payload()
    message_id = publish(
        topic,
        json.dumps(payload, sort_keys=True).encode("utf-8"),
        priority="critical",
        dedupe_key=alert.report_identifier,
    )
    log_event(
        logger,
        logging.WARNING,
        "critical finding",
        event=Event.CRITICAL_FINDING,
        **{k: v for k, v in payload.items() if k != "findings"},
        alert_message_id=message_id,
    )
    return message_id
