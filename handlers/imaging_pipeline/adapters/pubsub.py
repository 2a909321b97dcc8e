"""Pub/Sub publish: one message, waited for, failures classified as transient.

The client library reads PUBSUB_EMULATOR_HOST itself (tests and the demo point it at Google's
Pub/Sub emulator) and retries UNAVAILABLE and similar codes on its own; whatever still fails
(NOT_FOUND, PERMISSION_DENIED, a timeout) becomes a TransientError, so Pub/Sub redelivers the
event and the finding is published on a later attempt.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from imaging_pipeline.errors import TransientError

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

PUBLISH_TIMEOUT_S = 30.0


@functools.cache
def _publisher(emulator_host: str | None) -> PublisherClient:
    # Imported lazily (gRPC is heavy). Keyed on the emulator host: one client per target (tests
    # start emulators on free ports).
    from google.cloud.pubsub_v1 import PublisherClient

    return PublisherClient()


def publish(topic: str, data: bytes, **attributes: str) -> str:
    """Publish and wait; returns the message id."""
    from google.api_core import exceptions as api_exceptions

    try:
        future = _publisher(os.environ.get("PUBSUB_EMULATOR_HOST")).publish(
            topic, data, **attributes
        )
        return str(future.result(timeout=PUBLISH_TIMEOUT_S))
    except (api_exceptions.GoogleAPIError, TimeoutError) as exc:
        raise TransientError("pubsub", type(exc).__name__) from exc
