"""Cloud Functions gen2 HTTP entry point of the review app: every path goes to the Flask app."""

from __future__ import annotations

import functools
import logging
from typing import Any

import functions_framework

from imaging_pipeline import logs
from imaging_pipeline.review.config import load_review_config
from imaging_pipeline.runtime_env import ConfigurationError

logger = logging.getLogger("imaging_pipeline.review")


@functools.cache
def _app() -> Any:
    from imaging_pipeline.review.app import create_app

    config = load_review_config()
    logs.configure_logging(config.log_level)
    # The server's own access log would print raw request lines; ours (app.py) is JSON and
    # PHI-free by construction.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return create_app(config)


@functions_framework.http
def review_app(request: Any) -> Any:
    try:
        app = _app()
    except ConfigurationError as exc:
        # A deployment mistake: say which variable, once per request, without a stack trace.
        logs.configure_logging("INFO")
        logs.log_event(
            logger, logging.CRITICAL, f"invalid configuration: {exc}", event="configuration_error"
        )
        return ("503 Service Unavailable: the review app is misconfigured\n", 503)
    with app.request_context(request.environ):
        return app.full_dispatch_request()
