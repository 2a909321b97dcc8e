"""The operations page's numbers: what the processor did in the last day, by outcome and reason.

Two sources of the same facts, the processor's structured log lines (`event`, `outcome`,
`reason`, `instance_uid`):
- `LogFileOutcomes`: a file of those lines (the local demo: functions-framework's output);
- `MonitoringOutcomes`: in Google Cloud, the log-based metrics modules/observability.py makes
  from them (`<prefix>_processed|skipped|failed`, label `reason`), summed over the day with the
  Cloud Monitoring API (`timeSeries.list`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

OUTCOME_EVENTS = {
    "instance_processed": "processed",
    "instance_skipped": "skipped",
    "instance_failed": "failed",
}
WINDOW = timedelta(days=1)
MONITORING_URL = "https://monitoring.googleapis.com/v3"


@dataclass(frozen=True)
class OutcomeCount:
    outcome: str
    reason: str
    count: int


class OutcomeSource(Protocol):
    def counts(self, now: datetime) -> list[OutcomeCount]: ...

    def first_failure(self, instance_uids: Iterable[str]) -> dict[str, str]:
        """Instance UID -> the reason of its first failed attempt, where known."""
        ...


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def count_outcomes(entries: Iterable[Mapping[str, Any]], now: datetime) -> list[OutcomeCount]:
    """Pure: count final outcomes of the last day by (outcome, reason)."""
    counter: Counter[tuple[str, str]] = Counter()
    since = now - WINDOW
    for entry in entries:
        outcome = OUTCOME_EVENTS.get(str(entry.get("event", "")))
        when = _parse_time(entry.get("time"))
        if outcome is None or when is None or when < since:
            continue
        counter[(outcome, str(entry.get("reason") or "-"))] += 1
    order = {"processed": 0, "skipped": 1, "failed": 2}
    return [
        OutcomeCount(outcome, reason, n)
        for (outcome, reason), n in sorted(counter.items(), key=lambda i: (order[i[0][0]], i[0][1]))
    ]


def first_failures(entries: Iterable[Mapping[str, Any]], uids: Iterable[str]) -> dict[str, str]:
    wanted = set(uids)
    found: dict[str, str] = {}
    for entry in entries:
        uid = str(entry.get("instance_uid", ""))
        if uid in wanted and uid not in found and entry.get("outcome") in ("retry", "failed"):
            found[uid] = str(entry.get("reason") or "unknown")
    return found


class LogFileOutcomes:
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def _entries(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        entries = []
        for line in lines:
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries

    def counts(self, now: datetime) -> list[OutcomeCount]:
        return count_outcomes(self._entries(), now)

    def first_failure(self, instance_uids: Iterable[str]) -> dict[str, str]:
        return first_failures(self._entries(), instance_uids)


class MonitoringOutcomes:
    """Sums of the log-based metrics over the last day, grouped by reason."""

    def __init__(self, project: str, metric_prefix: str) -> None:
        self.project = project
        self.metric_prefix = metric_prefix.replace("-", "_")

    def query(self, outcome: str, now: datetime) -> list[tuple[str, str]]:
        metric = f"logging.googleapis.com/user/{self.metric_prefix}_{outcome}"
        return [
            ("filter", f'metric.type="{metric}"'),
            ("interval.startTime", (now - WINDOW).isoformat().replace("+00:00", "Z")),
            ("interval.endTime", now.isoformat().replace("+00:00", "Z")),
            ("aggregation.alignmentPeriod", f"{int(WINDOW.total_seconds())}s"),
            ("aggregation.perSeriesAligner", "ALIGN_SUM"),
            ("aggregation.crossSeriesReducer", "REDUCE_SUM"),
            ("aggregation.groupByFields", "metric.label.reason"),
        ]

    def counts(self, now: datetime) -> list[OutcomeCount]:
        from imaging_pipeline.adapters.http import session_for

        session = session_for(MONITORING_URL)
        found = []
        for outcome in ("processed", "skipped", "failed"):
            response = session.get(
                f"{MONITORING_URL}/projects/{self.project}/timeSeries",
                params=self.query(outcome, now),
                timeout=20,
            )
            response.raise_for_status()
            for series in response.json().get("timeSeries", []):
                reason = series.get("metric", {}).get("labels", {}).get("reason") or "-"
                total = sum(int(p["value"].get("int64Value", 0)) for p in series.get("points", []))
                if total:
                    found.append(OutcomeCount(outcome, reason, total))
        return found

    def first_failure(self, instance_uids: Iterable[str]) -> dict[str, str]:
        return {}  # per-instance reasons live in Cloud Logging; the page links there


class NoOutcomes:
    def counts(self, now: datetime) -> list[OutcomeCount]:
        return []

    def first_failure(self, instance_uids: Iterable[str]) -> dict[str, str]:
        return {}


def now_utc() -> datetime:
    return datetime.now(UTC)
