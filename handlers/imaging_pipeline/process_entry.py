"""The processor's Cloud Functions glue: one HTTP request from a push subscription in, one
status out. The pipeline itself (`process`) knows nothing about HTTP or functions-framework.

An HTTP function rather than a CloudEvent one: functions-framework answers 400 before any of our
code runs when a push has attributes but no `data`, and Pub/Sub would retry that until it is
dead-lettered without a log line saying why. Here every body gets a typed outcome: 200 and a
log line for a permanent reason, 500 only for a transient failure (Pub/Sub retries, then
dead-letters).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING

import functions_framework

from imaging_pipeline import logs
from imaging_pipeline.errors import TransientError
from imaging_pipeline.process import Processor, handle_event_data
from imaging_pipeline.push_body import event_data, trace_header
from imaging_pipeline.runtime_env import ConfigurationError, load_config
from imaging_pipeline.telemetry import CONFIGURATION_ERROR, Event, Outcome

if TYPE_CHECKING:
    import flask

logger = logging.getLogger("imaging_pipeline.process")
# Configured at import, before functions-framework's Flask app first logs: its tracebacks then
# go through the JSON handler instead of Flask's own plain-text one on stderr.
logs.configure_logging(os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO")


_PROCESSOR_LOCK = threading.Lock()


@functools.cache
def _build_processor() -> Processor:
    config = load_config()
    logs.configure_logging(config.log_level)
    return Processor(config)


def _processor() -> Processor:
    """Built on the first event of an instance (not at import: keeps the cold start small);
    concurrent first events wait for one build instead of racing to build two."""
    with _PROCESSOR_LOCK:
        return _build_processor()


def respond(processor: Processor, headers: Mapping[str, str], body: bytes) -> tuple[str, int]:
    """(body, HTTP status) for one push: 2xx acknowledges, anything else makes Pub/Sub retry.

    `headers` has lower-case names.
    """
    trace = logs.parse_trace_header(
        trace_header(headers, body), headers.get("x-cloud-trace-context")
    )
    try:
        outcome = handle_event_data(processor, event_data(headers, body), trace)
    except TransientError:
        return Outcome.RETRY.value, HTTPStatus.INTERNAL_SERVER_ERROR
    return outcome.status, HTTPStatus.OK


@functions_framework.http
def process_dicom_instance(request: flask.Request) -> tuple[str, int]:
    """Cloud Functions gen2 entry point: the body of a Pub/Sub push (any delivery shape)."""
    try:
        processor = _processor()
    except ConfigurationError as exc:
        # A deployment mistake: retry (and dead-letter) rather than drop events, and say why.
        logs.log_event(
            logger,
            logging.CRITICAL,
            f"invalid configuration: {exc}",
            event=Event.INSTANCE_RETRY,
            outcome=Outcome.RETRY,
            reason=CONFIGURATION_ERROR,
        )
        return Outcome.RETRY.value, HTTPStatus.INTERNAL_SERVER_ERROR
    headers = {name.lower(): value for name, value in request.headers.items()}
    return respond(processor, headers, request.get_data(cache=False))
