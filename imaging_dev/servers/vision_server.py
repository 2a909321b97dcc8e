"""A local HTTP server speaking the Cloud Vision REST protocol (`POST /v1/images:annotate`).

A test double of the Cloud Vision API, which has no emulator: it accepts the real JSON request
shape, rejects malformed requests the way Google does (400 with a `{"error": {code, message,
status}}` body), and answers in the real field names, so the unmodified
`google.cloud.vision.ImageAnnotatorClient(transport="rest")` talks to it when its
`api_endpoint` is this server's http:// URL (the REST transport keeps an explicit http scheme).

What it answers is programmable (`respond_with`); by default it derives a little from the image
itself (Pillow): a blank image gets a colour label, a greyscale one "Medical imaging" and
"Radiography", a colour one "Image". It only returns what was asked for, capped by `maxResults`.
Transient failures: `fail_next(n, status=503 or 429)`. `.requests` records what was asked.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.cloud.vision_v1 import Feature
from PIL import Image, ImageStat, UnidentifiedImageError

from imaging_dev.servers._http import ThreadedHttpServer

# The generated client sends enums as numbers (`$alt=json;enum-encoding=int`); curl users send
# names. Both are valid proto3 JSON, so accept both, using the client's own enum as the table.
_FEATURE_ENUM = Feature.Type.__members__.values()
FEATURE_TYPES: dict[str | int, str] = {
    **{t.name: t.name for t in _FEATURE_ENUM},
    **{int(t.value): t.name for t in _FEATURE_ENUM},
}
MAX_IMAGES_PER_REQUEST = 16
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # the documented limit of a JSON request body
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_CODE_INVALID_ARGUMENT = 3  # google.rpc.Code, used in per-image errors


@dataclass(frozen=True)
class RecordedRequest:
    """One image of an annotate call, as the server understood it (never the pixels)."""

    features: list[tuple[str, int | None]]
    image_size: tuple[int, int] | None
    image_mode: str | None
    image_bytes: int
    image_context: dict[str, Any] | None


@dataclass
class _Programmed:
    labels: list[tuple[str, float]] | None = None
    objects: list[tuple[str, float]] | None = None
    text: str | None = None


class _BadRequestError(Exception):
    pass


@dataclass
class _Failure:
    status: int
    retry_after: int | None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    programmed: _Programmed = field(default_factory=_Programmed)
    failures: list[_Failure] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    calls: int = 0


class VisionServer(ThreadedHttpServer):
    """`ImageAnnotatorClient(transport="rest", client_options={"api_endpoint": vs.url}, ...)`."""

    name = "vision"

    def __init__(self) -> None:
        super().__init__()
        self._state = _State()
        self.handler_class = _VisionHandler

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every image annotated so far (one entry per image, in order)."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def calls(self) -> int:
        """HTTP calls received, including failed and rejected ones."""
        with self._state.lock:
            return self._state.calls

    def respond_with(
        self,
        *,
        labels: list[tuple[str, float]] | None = None,
        objects: list[tuple[str, float]] | None = None,
        text: str | None = None,
    ) -> None:
        """Fixes the answer for every following image; None keeps the image-derived default."""
        with self._state.lock:
            self._state.programmed = _Programmed(labels=labels, objects=objects, text=text)

    def fail_next(self, n: int = 1, status: int = 503, retry_after: int | None = None) -> None:
        """The next `n` calls fail with `status` (503 UNAVAILABLE, 429 RESOURCE_EXHAUSTED...)."""
        with self._state.lock:
            self._state.failures.extend(_Failure(status, retry_after) for _ in range(n))

    def reset(self) -> None:
        """Back to default answers, no pending failures, no recorded requests."""
        with self._state.lock:
            self._state.programmed = _Programmed()
            self._state.failures.clear()
            self._state.requests.clear()
            self._state.calls = 0

    # --- request handling (called from handler threads) ----------------------------------

    def _annotate(self, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._state.lock:
            self._state.calls += 1
            failure = self._state.failures.pop(0) if self._state.failures else None
            programmed = self._state.programmed
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return (
                failure.status,
                _error(failure.status, "Injected failure by the local Vision server."),
                headers,
            )
        try:
            items = _parse(body)
        except _BadRequestError as err:
            return 400, _error(400, str(err)), {}
        responses = []
        for index, item in enumerate(items):
            responses.append(self._annotate_one(index, item, programmed))
        return 200, {"responses": responses}, {}

    def _annotate_one(
        self, index: int, item: dict[str, Any], programmed: _Programmed
    ) -> dict[str, Any]:
        features = [(f["type"], f.get("maxResults")) for f in item["features"]]
        raw = item["_image_bytes"]
        image: Image.Image | None = None
        try:
            image = Image.open(io.BytesIO(raw))
            image.load()
        except (UnidentifiedImageError, OSError, ValueError):
            image = None
        with self._state.lock:
            self._state.requests.append(
                RecordedRequest(
                    features=features,
                    image_size=image.size if image else None,
                    image_mode=image.mode if image else None,
                    image_bytes=len(raw),
                    image_context=item.get("imageContext"),
                )
            )
        if image is None:
            return {"error": {"code": _CODE_INVALID_ARGUMENT, "message": "Bad image data."}}
        response: dict[str, Any] = {}
        for feature, max_results in features:
            limit = max_results if max_results and max_results > 0 else None
            if feature == "LABEL_DETECTION":
                labels = programmed.labels if programmed.labels is not None else _labels(image)
                response["labelAnnotations"] = [
                    {"mid": f"/m/local{i}", "description": d, "score": s, "topicality": s}
                    for i, (d, s) in enumerate(labels[:limit])
                ]
            elif feature == "OBJECT_LOCALIZATION":
                objects = programmed.objects or []
                response["localizedObjectAnnotations"] = [
                    {
                        "mid": f"/m/localobj{i}",
                        "name": n,
                        "score": s,
                        "boundingPoly": {
                            "normalizedVertices": [
                                {"x": 0.1, "y": 0.1},
                                {"x": 0.9, "y": 0.1},
                                {"x": 0.9, "y": 0.9},
                                {"x": 0.1, "y": 0.9},
                            ]
                        },
                    }
                    for i, (n, s) in enumerate(objects[:limit])
                ]
            elif feature in ("TEXT_DETECTION", "DOCUMENT_TEXT_DETECTION") and programmed.text:
                response["textAnnotations"] = _text_annotations(programmed.text, image.size)
                response["fullTextAnnotation"] = {"text": programmed.text}
        # Google omits empty lists from the JSON; so do we.
        return {k: v for k, v in response.items() if v}


class _VisionHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalVision/1"

    def do_POST(self) -> None:
        owner: VisionServer = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        if not _is_annotate_path(path):
            self._send(404, _error(404, f"Method not found: {path}"), {})
            return
        self._send(*owner._annotate(body))

    def do_GET(self) -> None:
        self._send(404, _error(404, "Only POST .../images:annotate is served here."), {})

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; .requests is the record


def _is_annotate_path(path: str) -> bool:
    # /v1/images:annotate, /v1/projects/P/images:annotate, /v1/projects/P/locations/L/images:...
    parts = path.strip("/").split("/")
    if not parts or parts[0] != "v1" or parts[-1] != "images:annotate":
        return False
    middle = parts[1:-1]
    return middle == [] or (
        len(middle) in (2, 4)
        and middle[0] == "projects"
        and (len(middle) == 2 or middle[2] == "locations")
    )


def _error(status: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }


def _parse(body: bytes) -> list[dict[str, Any]]:
    """Validates the batch request; raises _BadRequestError with a Google-like message."""
    if len(body) > MAX_REQUEST_BYTES:
        raise _BadRequestError(
            f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
        )
    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _BadRequestError(f"Invalid JSON payload received. {err}") from err
    if not isinstance(payload, dict):
        raise _BadRequestError("Invalid JSON payload received. Expected an object.")
    unknown = set(payload) - {"requests", "parent"}
    if unknown:
        name = sorted(unknown)[0]
        raise _BadRequestError(f'Invalid JSON payload received. Unknown name "{name}"')
    items = payload.get("requests")
    if not isinstance(items, list) or not items:
        raise _BadRequestError("No requests specified.")
    if len(items) > MAX_IMAGES_PER_REQUEST:
        raise _BadRequestError(f"At most {MAX_IMAGES_PER_REQUEST} images per request.")
    for i, item in enumerate(items):
        where = f"requests[{i}]"
        if not isinstance(item, dict):
            raise _BadRequestError(f"Invalid value at '{where}'.")
        image = item.get("image")
        if not isinstance(image, dict) or "content" not in image:
            raise _BadRequestError(
                f"{where}.image.content is required (this local server does not "
                "fetch image.source URIs)."
            )
        try:
            item["_image_bytes"] = base64.b64decode(image["content"], validate=True)
        except (binascii.Error, TypeError, ValueError) as err:
            raise _BadRequestError(
                f"Invalid value at '{where}.image.content' (TYPE_BYTES), Base64 decoding failed."
            ) from err
        features = item.get("features")
        if not isinstance(features, list) or not features:
            raise _BadRequestError(f"{where}: at least one feature is required.")
        for j, feature in enumerate(features):
            ftype = feature.get("type") if isinstance(feature, dict) else None
            if isinstance(ftype, bool) or ftype not in FEATURE_TYPES:
                raise _BadRequestError(
                    f"Invalid value at '{where}.features[{j}].type' "
                    f"(type.googleapis.com/google.cloud.vision.v1.Feature.Type), "
                    f'"{ftype}"'
                )
            max_results = feature.get("maxResults")
            if max_results is not None and not isinstance(max_results, int):
                raise _BadRequestError(
                    f"Invalid value at '{where}.features[{j}].max_results' (TYPE_INT32)"
                )
            feature["type"] = FEATURE_TYPES[ftype]
        context = item.get("imageContext")
        if context is not None and not isinstance(context, dict):
            raise _BadRequestError(f"Invalid value at '{where}.image_context'.")
    return items


def _labels(image: Image.Image) -> list[tuple[str, float]]:
    """The default answer: a few honest facts about the pixels, in Vision's vocabulary."""
    grey = image.convert("L")
    stats = ImageStat.Stat(grey)
    if stats.stddev[0] < 1.0:  # one flat colour: nothing to see
        mean = stats.mean[0]
        colour = "Black" if mean < 64 else "White" if mean > 192 else "Grey"
        return [(colour, 0.95)]
    radiography = [("Medical imaging", 0.9), ("Radiography", 0.8)]
    if image.mode in ("1", "L", "I", "I;16", "F"):
        return radiography  # greyscale: no need to look at colour (the costly part)
    means = ImageStat.Stat(image.convert("RGB")).mean
    return radiography if max(means) - min(means) < 2.0 else [("Image", 0.7)]


def _text_annotations(text: str, size: tuple[int, int]) -> list[dict[str, Any]]:
    """The whole text first (with the locale), then one entry per word, as Vision does."""
    width, height = size
    box = {
        "vertices": [
            {"x": 0, "y": 0},
            {"x": width, "y": 0},
            {"x": width, "y": height},
            {"x": 0, "y": height},
        ]
    }
    whole = {"locale": "en", "description": text, "boundingPoly": box}
    return [whole, *({"description": word, "boundingPoly": box} for word in text.split())]
