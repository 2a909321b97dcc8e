"""Generation preconditions for gcp-storage-emulator, which accepts and ignores them all.

Code that moves objects safely relies on them (`if_generation_match=0` so a copy never
overwrites, `if_generation_match=G` so a delete never removes a newer upload), so a test against
an emulator that ignores them proves nothing. This request handler evaluates them the way Cloud
Storage documents, from the emulator's own object records, before the emulator runs the request:
- ifGenerationMatch / ifGenerationNotMatch / ifMetagenerationMatch / ifMetagenerationNotMatch on
  object reads, patches, deletes, uploads (object named by `name` or by the upload's metadata)
  and on the destination of copyTo / rewriteTo;
- ifSource* on the source of copyTo / rewriteTo, and `sourceGeneration` / `generation` naming a
  generation that is not the live one: 404 (the emulator keeps no older generations).
A failed precondition is a 412 (304 for a read's *NotMatch), with Google's error body.
"""

from __future__ import annotations

import io
import json
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.server import RequestHandler

_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class _FailedError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


class PreconditionRequestHandler(RequestHandler):
    """The emulator's handler with preconditions checked first (see the module docstring)."""

    rfile: Any  # from http.server; replaced by a buffer after we read an upload's metadata

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if self._preconditions_hold("GET"):
            super().do_GET()

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if self._preconditions_hold("POST"):
            super().do_POST()

    def do_PUT(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if self._preconditions_hold("PUT"):
            super().do_PUT()

    def do_PATCH(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if self._preconditions_hold("PATCH"):
            super().do_PATCH()

    def do_DELETE(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if self._preconditions_hold("DELETE"):
            super().do_DELETE()

    def _preconditions_hold(self, method: str) -> bool:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        segments = [unquote(s) for s in url.path.split("/")]
        try:
            self._check(method, segments, query)
        except _FailedError as failed:
            self._send_error(failed)
            return False
        return True

    def _check(self, method: str, segments: list[str], query: dict[str, str]) -> None:
        target = _object_after(segments, 0)
        if target is None:
            return
        bucket, name, end = target
        if name is not None and end < len(segments) and segments[end] in ("copyTo", "rewriteTo"):
            destination = _object_after(segments, end + 1)
            if destination is None:
                return
            self._check_generation(bucket, name, query.get("sourceGeneration"))
            self._check_object(bucket, name, query, prefix="ifSource")
            if destination[1] is not None:
                self._check_object(destination[0], destination[1], query, prefix="if", creates=True)
            return
        if name is None:  # an upload: POST .../b/BUCKET/o
            if method == "POST" and query.get("uploadType") and query.get("upload_id") is None:
                upload_name = query.get("name") or self._upload_name()
                if upload_name:
                    self._check_object(bucket, upload_name, query, prefix="if", creates=True)
            return
        self._check_generation(bucket, name, query.get("generation"))
        self._check_object(bucket, name, query, prefix="if", read=method not in _WRITE_METHODS)

    def _current(self, bucket: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.storage.get_file_obj(bucket, name)
        except NotFound:
            return None
        return found

    def _check_generation(self, bucket: str, name: str, wanted: str | None) -> None:
        current = self._current(bucket, name)
        if wanted is not None and current is not None and str(current.get("generation")) != wanted:
            raise _FailedError(404, "notFound", f"No such object: {bucket}/{name}#{wanted}")

    def _check_object(
        self,
        bucket: str,
        name: str,
        query: dict[str, str],
        *,
        prefix: str,
        read: bool = False,
        creates: bool = False,
    ) -> None:
        conditions = {
            key: query.get(prefix + key)
            for key in (
                "GenerationMatch",
                "GenerationNotMatch",
                "MetagenerationMatch",
                "MetagenerationNotMatch",
            )
        }
        if all(value is None for value in conditions.values()):
            return
        current = self._current(bucket, name)
        if current is None:
            if conditions["GenerationMatch"] == "0":
                return  # "only if it does not exist yet": holds
            if creates:
                raise _failed_precondition()
            return  # the emulator answers 404 for a missing object, as Cloud Storage does
        actual = {
            "Generation": int(current.get("generation") or 0),
            "Metageneration": int(current.get("metageneration") or 1),
        }
        for kind, value in actual.items():
            match, not_match = conditions[f"{kind}Match"], conditions[f"{kind}NotMatch"]
            if match is not None and int(match) != value:
                raise _failed_precondition()
            if not_match is not None and int(not_match) == value:
                if read:
                    raise _FailedError(304, "notModified", "Not Modified")
                raise _failed_precondition()

    def _upload_name(self) -> str | None:
        """The object name from an upload's metadata; the body is put back for the emulator."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.rfile = io.BytesIO(body)
        content_type = self.headers.get("Content-Type") or ""
        try:
            if content_type.startswith("application/json"):
                metadata = json.loads(body or b"{}")
            elif content_type.startswith("multipart/"):
                message = BytesParser().parsebytes(
                    f"Content-Type: {content_type}\r\n\r\n".encode() + body
                )
                parts: Any = message.get_payload()
                first = parts[0].get_payload(decode=True)
                metadata = json.loads(first)
            else:
                return None
        except (ValueError, IndexError, TypeError, AttributeError):
            return None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return str(name) if name else None

    def _send_error(self, failed: _FailedError) -> None:
        payload = b""
        if failed.status != 304:
            payload = json.dumps(
                {
                    "error": {
                        "code": failed.status,
                        "message": failed.message,
                        "errors": [
                            {"domain": "global", "reason": failed.reason, "message": failed.message}
                        ],
                    }
                }
            ).encode()
        self.send_response(failed.status)
        if payload:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _object_after(segments: list[str], start: int) -> tuple[str, str | None, int] | None:
    """(bucket, object or None, index after it) for the first `b/BUCKET/o[/OBJECT]` from start."""
    for i in range(start, len(segments) - 2):
        if segments[i] == "b" and segments[i + 2] == "o":
            if i + 3 < len(segments) and segments[i + 3]:
                return segments[i + 1], segments[i + 3], i + 4
            return segments[i + 1], None, i + 3
    return None


def _failed_precondition() -> _FailedError:
    return _FailedError(
        412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold."
    )
