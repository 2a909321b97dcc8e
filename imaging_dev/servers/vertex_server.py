"""A local HTTP server speaking Vertex AI's online prediction REST protocol (`:predict`).

`POST /v1/projects/P/locations/L/endpoints/E:predict` with `{"instances": [...],
"parameters": {...}}` answers `{"predictions": [...], "deployedModelId", "model",
"modelDisplayName", "modelVersionId"}`, or Google's error body (`{"error": {code, message,
status}}`) with 400 for a malformed request, 404 for an unknown endpoint.

Every instance is validated against the request-instance schema of Google's open health models
as published for MedSigLIP (Google-Health/medsiglip, python/serving/vertex_schemata/
instance.yaml; Apache-2.0). The rules are restated here in code rather than vendoring the file:

- an instance is an object with exactly one of `image` (object) or `text` (string), nothing else;
- `image` has exactly one source: `dicomweb_uri` (https://.../studies/UID/series/UID/
  instances/UID, UIDs of digits and dots, at most 64 characters), `gcs_uri`
  (gs://bucket/.../name.ext), `image_url` (http(s)://...) or `input_bytes` (base64);
- `access_credential` (`application_default` or a token of letters, digits, `_`, `-`, `.`) is
  not allowed with `input_bytes`; `openslide_pyramid_level` not with `dicomweb_uri` or
  `input_bytes`;
- the only other keys are `patch_coordinates_list` (non-empty list of {x_origin >= 0,
  y_origin >= 0, optional width >= 1, height >= 1}) and `extensions` (non-empty object).

Two model behaviours (`model=`): `classification` answers Vertex AI's image classification
shape (`displayNames`, `confidences`, optional `bboxes`), programmable with `respond_with`;
`zero_shot` answers like MedSigLIP: an `embedding` per instance plus `model_temperature` and
`model_bias`, with each text's cosine similarity to the image set by `respond_with(similarity=)`.
`fail_next(n, status)` injects 429/5xx; `.requests` records what was asked (never the pixels).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from imaging_dev.servers._http import ThreadedHttpServer

_PREDICT_PATH = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/endpoints/[^/:]+):predict$")
_DICOMWEB_URI = re.compile(
    r"^https://.+/studies/[0-9.]{1,64}/series/[0-9.]{1,64}/instances/[0-9.]{1,64}$"
)
_GCS_URI = re.compile(r"^gs://[^/]+(/[^/]+)*/[^/]+\.[^/]+$")
_IMAGE_URL = re.compile(r"^https?://.+$")
_CREDENTIAL = re.compile(r"^(application_default|[a-zA-Z0-9_\-.]+)$")
_SOURCES = ("dicomweb_uri", "gcs_uri", "image_url", "input_bytes")
_IMAGE_KEYS = frozenset(
    {
        *_SOURCES,
        "patch_coordinates_list",
        "extensions",
        "openslide_pyramid_level",
        "access_credential",
    }
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
EMBEDDING_SIZE = 8
# exp(temperature) = 10 and bias -5: a cosine c scores sigmoid(10 c - 5).
MODEL_TEMPERATURE = math.log(10.0)
MODEL_BIAS = -5.0
DEPLOYED_MODEL_ID = "1234567890"


class SchemaError(Exception):
    """An instance does not match the published instance schema."""


@dataclass(frozen=True)
class RecordedInstance:
    """One instance as the server understood it (never pixels or tokens)."""

    endpoint: str
    kind: Literal["image", "text"]
    source: str | None  # which image source: dicomweb_uri, input_bytes, ...
    dicomweb_uri: str | None = None
    has_credential: bool = False
    image_size: tuple[int, int] | None = None
    text: str | None = None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    labels: list[tuple[str, float]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] | None = None
    similarity: dict[str, float] = field(default_factory=dict)
    failures: list[tuple[int, int | None]] = field(default_factory=list)
    instances: list[RecordedInstance] = field(default_factory=list)
    calls: int = 0


def validate_instance(instance: Any) -> None:
    """Raises SchemaError unless `instance` matches the instance schema (see module doc)."""
    if not isinstance(instance, dict):
        raise SchemaError("instance is not an object")
    extra = set(instance) - {"image", "text"}
    if extra:
        raise SchemaError(f"unknown instance field {sorted(extra)[0]!r}")
    if ("image" in instance) == ("text" in instance):
        raise SchemaError("an instance has exactly one of 'image' or 'text'")
    if "text" in instance:
        if not isinstance(instance["text"], str):
            raise SchemaError("'text' is not a string")
        return
    _validate_image(instance["image"])


def _validate_image(image: Any) -> None:
    if not isinstance(image, dict):
        raise SchemaError("'image' is not an object")
    extra = set(image) - _IMAGE_KEYS
    if extra:
        raise SchemaError(f"unknown image field {sorted(extra)[0]!r}")
    sources = [s for s in _SOURCES if s in image]
    if len(sources) != 1:
        raise SchemaError(f"an image has exactly one of {', '.join(_SOURCES)}")
    source = sources[0]
    value = image[source]
    if not isinstance(value, str):
        raise SchemaError(f"'{source}' is not a string")
    patterns = {"dicomweb_uri": _DICOMWEB_URI, "gcs_uri": _GCS_URI, "image_url": _IMAGE_URL}
    if source in patterns and not patterns[source].fullmatch(value):
        raise SchemaError(f"'{source}' does not match {patterns[source].pattern}")
    if source == "input_bytes":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SchemaError("'input_bytes' is not base64") from None
        if "access_credential" in image:
            raise SchemaError("'access_credential' is not allowed with 'input_bytes'")
    if "openslide_pyramid_level" in image and source in ("dicomweb_uri", "input_bytes"):
        raise SchemaError(f"'openslide_pyramid_level' is not allowed with '{source}'")
    credential = image.get("access_credential")
    if credential is not None and (
        not isinstance(credential, str) or not _CREDENTIAL.fullmatch(credential)
    ):
        raise SchemaError("'access_credential' does not match " + _CREDENTIAL.pattern)
    patches = image.get("patch_coordinates_list")
    if patches is not None:
        _validate_patches(patches)
    extensions = image.get("extensions")
    if extensions is not None and (not isinstance(extensions, dict) or not extensions):
        raise SchemaError("'extensions' is not a non-empty object")


def _validate_patches(patches: Any) -> None:
    if not isinstance(patches, list) or not patches:
        raise SchemaError("'patch_coordinates_list' is not a non-empty list")
    for patch in patches:
        if not isinstance(patch, dict) or set(patch) - {"x_origin", "y_origin", "width", "height"}:
            raise SchemaError("a patch has unknown fields")
        for key, low in (("x_origin", 0), ("y_origin", 0), ("width", 1), ("height", 1)):
            if key not in patch:
                if key in ("x_origin", "y_origin"):
                    raise SchemaError(f"a patch needs '{key}'")
                continue
            value = patch[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SchemaError(f"patch '{key}' is not an integer >= {low}")


class VertexServer(ThreadedHttpServer):
    """`VERTEX_ENDPOINT=server.url`; serves any endpoint in `endpoints` (all when empty)."""

    name = "vertex"

    def __init__(
        self,
        model: Literal["classification", "zero_shot"] = "classification",
        endpoints: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.model = model
        self.endpoints = endpoints
        self._state = _State()
        self.handler_class = _VertexHandler

    @property
    def instances(self) -> list[RecordedInstance]:
        with self._state.lock:
            return list(self._state.instances)

    @property
    def calls(self) -> int:
        with self._state.lock:
            return self._state.calls

    def respond_with(
        self,
        *,
        labels: list[tuple[str, float]] | None = None,
        boxes: list[tuple[float, float, float, float]] | None = None,
        similarity: dict[str, float] | None = None,
    ) -> None:
        """Classification: `labels` (and per-label `boxes` x0, y0, x1, y1) for every image.
        Zero-shot: the cosine similarity of each text to the image (others: 0)."""
        with self._state.lock:
            self._state.labels = list(labels or [])
            self._state.boxes = list(boxes) if boxes is not None else None
            self._state.similarity = dict(similarity or {})

    def fail_next(self, n: int = 1, status: int = 503, retry_after: int | None = None) -> None:
        with self._state.lock:
            self._state.failures.extend((status, retry_after) for _ in range(n))

    def reset(self) -> None:
        with self._state.lock:
            self._state.labels, self._state.boxes, self._state.similarity = [], None, {}
            self._state.failures.clear()
            self._state.instances.clear()
            self._state.calls = 0

    # --- request handling (handler threads) ----------------------------------------------

    def _predict(self, endpoint: str, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._state.lock:
            self._state.calls += 1
            failure = self._state.failures.pop(0) if self._state.failures else None
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": str(retry_after)} if retry_after else {}
            return status, _error(status, "Injected failure by the local Vertex server."), headers
        if self.endpoints and endpoint not in self.endpoints:
            return 404, _error(404, f"Endpoint `{endpoint}` not found."), {}
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return 400, _error(400, "Invalid JSON payload received."), {}
        if not isinstance(payload, dict) or set(payload) - {"instances", "parameters"}:
            return 400, _error(400, "Request has fields other than instances, parameters."), {}
        instances = payload.get("instances")
        if not isinstance(instances, list) or not instances:
            return 400, _error(400, "instances must be a non-empty list."), {}
        for i, instance in enumerate(instances):
            try:
                validate_instance(instance)
            except SchemaError as err:
                return 400, _error(400, f"instances[{i}]: {err}"), {}
        records = [self._record(endpoint, instance) for instance in instances]
        with self._state.lock:
            self._state.instances.extend(records)
        predictions = self._predictions(records)
        return (
            200,
            {
                "predictions": predictions,
                "deployedModelId": DEPLOYED_MODEL_ID,
                "model": endpoint.replace("/endpoints/", "/models/"),
                "modelDisplayName": f"local-{self.model}",
                "modelVersionId": "1",
            },
            {},
        )

    @staticmethod
    def _record(endpoint: str, instance: dict[str, Any]) -> RecordedInstance:
        if "text" in instance:
            return RecordedInstance(endpoint, "text", None, text=instance["text"])
        image = instance["image"]
        source = next(s for s in _SOURCES if s in image)
        size = None
        if source == "input_bytes":
            try:
                with Image.open(io.BytesIO(base64.b64decode(image["input_bytes"]))) as decoded:
                    size = decoded.size
            except (UnidentifiedImageError, OSError, ValueError):
                size = None
        return RecordedInstance(
            endpoint,
            "image",
            source,
            dicomweb_uri=image.get("dicomweb_uri"),
            has_credential="access_credential" in image,
            image_size=size,
        )

    def _predictions(self, records: list[RecordedInstance]) -> list[dict[str, Any]]:
        with self._state.lock:
            labels, boxes = list(self._state.labels), self._state.boxes
            similarity = dict(self._state.similarity)
        out: list[dict[str, Any]] = []
        for record in records:
            if record.source == "input_bytes" and record.image_size is None:
                out.append({"error": {"code": "INVALID_IMAGE", "description": "Bad image."}})
            elif self.model == "zero_shot":
                cosine = similarity.get(record.text or "", 0.0) if record.kind == "text" else 1.0
                out.append(
                    {
                        "embedding": _embedding(cosine),
                        "model_temperature": MODEL_TEMPERATURE,
                        "model_bias": MODEL_BIAS,
                    }
                )
            elif record.kind == "image":
                prediction: dict[str, Any] = {
                    "ids": [str(i) for i in range(len(labels))],
                    "displayNames": [name for name, _ in labels],
                    "confidences": [score for _, score in labels],
                }
                if boxes is not None:  # Vertex AI's order: xMin, xMax, yMin, yMax
                    prediction["bboxes"] = [[b[0], b[2], b[1], b[3]] for b in boxes]
                out.append(prediction)
            else:
                out.append({"error": {"code": "INVALID_REQUEST", "description": "text"}})
        return out


def _embedding(cosine: float) -> list[float]:
    """A unit vector whose cosine with the image's (the first axis) is `cosine`."""
    vector = [0.0] * EMBEDDING_SIZE
    vector[0] = cosine
    vector[1] = math.sqrt(max(0.0, 1.0 - cosine * cosine))
    return vector


class _VertexHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalVertex/1"

    def do_POST(self) -> None:
        owner: VertexServer = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = _PREDICT_PATH.fullmatch(self.path.split("?", 1)[0])
        if match is None:
            self._send(404, _error(404, f"Method not found: {self.path}"), {})
            return
        self._send(*owner._predict(match.group(1), body))

    def do_GET(self) -> None:
        self._send(404, _error(404, "Only POST .../endpoints/E:predict is served here."), {})

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
        pass


def _error(status: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }
