"""Critical findings: one JSON message to the alerts topic, and the log line a metric counts.

The message carries references and UIDs only (no names, birth dates or patient ids), so the
alert channel never needs to be PHI-cleared. Delivery is at least once: a redelivered event
publishes again (a lost alert is worse than a repeated one); `dedupe_key` (the report identifier)
lets consumers drop repeats.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imaging_pipeline.errors import TransientError
from imaging_pipeline.logs import log_event
from imaging_pipeline.rules import Match

# The log-based metric for critical findings filters on jsonPayload.event = this value.
CRITICAL_FINDING_EVENT = "critical_finding"
PUBLISH_TIMEOUT_S = 30.0

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


@functools.cache
def _publisher(emulator_host: str | None) -> Any:
    # Imported lazily (gRPC is heavy). The client itself reads PUBSUB_EMULATOR_HOST; keying the
    # cache on it keeps one client per target (tests start local servers on free ports).
    from google.cloud.pubsub_v1 import PublisherClient

    return PublisherClient()


def publish_alert(topic: str, alert: Alert) -> str:
    """Publish and log the alert; returns the Pub/Sub message id."""
    from google.api_core import exceptions as api_exceptions

    payload = alert.payload()
    try:
        future = _publisher(os.environ.get("PUBSUB_EMULATOR_HOST")).publish(
            topic,
            json.dumps(payload, sort_keys=True).encode("utf-8"),
            priority="critical",
            dedupe_key=alert.report_identifier,
        )
        message_id = str(future.result(timeout=PUBLISH_TIMEOUT_S))
    except (api_exceptions.GoogleAPIError, TimeoutError) as exc:
        raise TransientError("pubsub", type(exc).__name__) from exc
    log_event(
        logger,
        logging.WARNING,
        "critical finding",
        event=CRITICAL_FINDING_EVENT,
        **{k: v for k, v in payload.items() if k != "findings"},
        alert_message_id=message_id,
    )
    return message_id
