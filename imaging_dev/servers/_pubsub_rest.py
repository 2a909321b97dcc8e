"""The Pub/Sub REST publish method (`POST /v1/projects/P/topics/T:publish`) for PubSubServer.

For publishers that cannot speak gRPC, here Orthanc's Lua hook (see orthanc.py), which
publishes the DICOM store's notifications the way the Cloud Healthcare API does. Same state,
same validation and same fault injection as the gRPC Publish of PubSubServer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import grpc
from google.pubsub_v1 import types as pubsub

from imaging_dev.servers._http import ThreadedHttpServer

_PUBLISH_PATH = re.compile(r"^/v1/(projects/[^/]+/topics/[^/:]+):publish$")
# google.rpc code -> HTTP status, as Google's REST front end maps them.
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.INTERNAL: 500,
}

# Publishes a request; raises an exception with `code` and `details` (a gRPC status) on error.
PublishFn = Callable[[pubsub.PublishRequest], pubsub.PublishResponse]


class PubSubRestServer(ThreadedHttpServer):
    name = "pubsub-rest"

    def __init__(self, publish: PublishFn) -> None:
        super().__init__()
        self.publish = publish
        self.handler_class = _RestHandler


class _RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        owner: PubSubRestServer = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = _PUBLISH_PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._send(404, _error(grpc.StatusCode.NOT_FOUND, f"No route: {self.path}"))
            return
        try:
            request = _publish_request(match.group(1), body)
            response = owner.publish(request)
        except ValueError as err:
            self._send(400, _error(grpc.StatusCode.INVALID_ARGUMENT, str(err)))
            return
        except Exception as err:
            code = getattr(err, "code", None)
            if not isinstance(code, grpc.StatusCode):
                raise
            self._send(_HTTP_STATUS.get(code, 500), _error(code, str(getattr(err, "details", err))))
            return
        self._send(200, {"messageIds": list(response.message_ids)})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # PubSubServer.calls and .published() are the record


def _publish_request(topic: str, body: bytes) -> pubsub.PublishRequest:
    try:
        payload = json.loads(body or b"{}")
        messages = [
            pubsub.PubsubMessage(
                data=base64.b64decode(m.get("data", ""), validate=True),
                attributes={str(k): str(v) for k, v in (m.get("attributes") or {}).items()},
                ordering_key=str(m.get("orderingKey", "")),
            )
            for m in payload.get("messages") or []
        ]
    except (json.JSONDecodeError, binascii.Error, AttributeError, TypeError) as err:
        raise ValueError(f"Invalid JSON payload received. {err}") from err
    return pubsub.PublishRequest(topic=topic, messages=messages)


def _error(code: grpc.StatusCode, message: str) -> dict[str, Any]:
    return {"error": {"code": _HTTP_STATUS.get(code, 500), "message": message, "status": code.name}}
