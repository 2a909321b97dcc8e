"""How the processor classifies failures, which decides whether Pub/Sub redelivers.

Permanent: the input itself is bad or unsupported; retrying cannot help, so the function logs the
reason code and returns 2xx (the message is acknowledged). Transient: a dependency failed
(network, 429, 5xx); the function raises, functions-framework answers 5xx, Pub/Sub retries with
backoff and finally dead-letters the message.
"""

from __future__ import annotations

from imaging_pipeline.telemetry import PermanentReason

# The reason codes are part of the telemetry contract (metrics label failures with them).


class PipelineError(Exception):
    """Base class; `str()` never contains PHI (UIDs and reason codes only)."""

    modality: str | None = None  # set once the instance is known, for the metrics' labels


class PermanentError(PipelineError):
    def __init__(self, reason: PermanentReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: PermanentReason = reason
        self.detail = detail


class TransientError(PipelineError):
    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency}: {detail}")
        self.dependency = dependency
        self.detail = detail


# HTTP statuses worth retrying: timeouts, throttling and server-side failures.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def classify_http_status(dependency: str, status: int, detail: str = "") -> PipelineError:
    """Map a failed HTTP status from a dependency to the error the pipeline raises.

    401/403 count as transient on purpose: they mean a missing IAM grant or expired credentials
    (a deployment problem), and retrying keeps the message until it reaches the dead-letter
    topic instead of silently acknowledging work that was never done.
    """
    text = f"HTTP {status}" + (f" {detail}" if detail else "")
    if status in RETRYABLE_STATUS or status in (401, 403) or status >= 500:
        return TransientError(dependency, text)
    if status in (404, 410):
        return PermanentError("not_found", f"{dependency} {text}")
    return PermanentError("rejected_by_server", f"{dependency} {text}")
