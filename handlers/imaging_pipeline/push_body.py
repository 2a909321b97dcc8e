"""Every body a Pub/Sub push can bring, reduced to the Pub/Sub message it carries (pure).

A push subscription POSTs a wrapped envelope `{"message": {...}, "subscription": ...}`; Eventarc
sends the same envelope as CloudEvent data, in binary mode (`ce-*` headers, the envelope as the
body) or structured mode (`application/cloudevents+json`, the envelope under `data`). A message
may have `data`, `attributes` or both. Whatever cannot be read becomes a permanent
`malformed_event` in `events.parse_event`: acknowledged with a log line, because redelivering
the same bytes cannot help.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

STRUCTURED_CLOUD_EVENT = "application/cloudevents+json"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def event_data(headers: Mapping[str, str], body: bytes) -> Any:
    """The `{"message": {...}}` document of a push in any delivery shape, as far as it can be
    read (None if it is not JSON); `events.parse_event` validates it. Header names in lower
    case."""
    document = _json(body)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == STRUCTURED_CLOUD_EVENT and isinstance(document, Mapping):
        if "data_base64" in document:
            try:
                return _json(base64.b64decode(str(document["data_base64"]), validate=True))
            except binascii.Error:
                return None
        return document.get("data")
    return document


def trace_header(headers: Mapping[str, str], body: bytes) -> str | None:
    """`traceparent` from the headers, or from a structured CloudEvent's extension."""
    if headers.get("traceparent"):
        return headers["traceparent"]
    if headers.get("content-type", "").lower().startswith(STRUCTURED_CLOUD_EVENT):
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        value = document.get("traceparent") if isinstance(document, Mapping) else None
        return value if isinstance(value, str) else None
    return None
