"""Vertex AI analyzer: one `:predict` call to an endpoint serving an image model.

The model is the operator's choice (README, "Specialized models on Vertex AI"); two prediction
shapes are understood:

- `classification`: each prediction carries `displayNames` and `confidences` (and, for
  detectors, `bboxes` as `[xMin, xMax, yMin, yMax]` normalised), the shape of Vertex AI's image
  classification and object detection models. A prediction with boxes becomes `object` findings,
  one without becomes `label` findings.
- `zero_shot`: an embedding model such as MedSigLIP. The request carries the image and one text
  instance per configured label; each label's score is the SigLIP probability
  sigmoid(cos(image, text) * exp(model_temperature) + model_bias).

The image travels in one of two ways (`input`): `pixels`, the rendered JPEG/PNG as
`input_bytes`; or `dicomweb`, the instance's DICOMweb URL plus this function's own OAuth access
token as `access_credential`, so the model reads the original pixels from the DICOM store (the
request shape of Google-Health/medsiglip, python/serving/vertex_schemata/instance.yaml).

Timeouts, retries (429, 5xx, network) and error classes are those of the Vision adapter.
"""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from imaging_pipeline.adapters.http import (
    PerThreadSession,
    raise_for_status,
    request_with_retries,
    uses_google_auth,
)
from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.errors import PermanentError, TransientError
from imaging_pipeline.settings import VertexSettings

if TYPE_CHECKING:
    from imaging_pipeline.render import RenderedImage

HEALTHCARE_SCOPE = "https://www.googleapis.com/auth/cloud-healthcare"
API_VERSION = "v1"
TokenSource = Callable[[], str | None]


def predict_url(settings: VertexSettings, api_base: str | None = None) -> str:
    """`{base}/v1/{endpoint}:predict`: a local server, a dedicated endpoint's own DNS name, or
    the regional shared API."""
    if api_base:
        base = api_base.rstrip("/")
    elif settings.dedicated_domain:
        base = f"https://{settings.dedicated_domain}"
    else:
        base = f"https://{settings.location}-aiplatform.googleapis.com"
    return f"{base}/{API_VERSION}/{settings.endpoint}:predict"


def pixels_instance(image_bytes: bytes) -> dict[str, Any]:
    return {"image": {"input_bytes": base64.b64encode(image_bytes).decode("ascii")}}


def dicomweb_instance(instance_url: str, access_token: str | None) -> dict[str, Any]:
    image: dict[str, Any] = {"dicomweb_uri": instance_url}
    if access_token:
        image["access_credential"] = access_token
    return {"image": image}


def predict_request(image_instance: dict[str, Any], settings: VertexSettings) -> dict[str, Any]:
    instances = [image_instance]
    if settings.output == "zero_shot":
        instances += [{"text": label} for label in settings.labels]
    return {"instances": instances}


def _predictions(body: dict[str, Any], expected: int) -> list[dict[str, Any]]:
    if "error" in body:  # a model server's whole-request error inside a 200
        raise PermanentError("rejected_by_server", "vertex prediction error")
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) < expected:
        raise TransientError("vertex", "response has too few predictions")
    for prediction in predictions[:expected]:
        if not isinstance(prediction, dict):
            raise TransientError("vertex", "prediction is not an object")
        if "error" in prediction:
            code = str((prediction["error"] or {}).get("code", "unknown"))[:64]
            raise PermanentError("rejected_by_server", f"vertex instance error {code}")
    return predictions[:expected]


def _box(values: Sequence[Any]) -> tuple[float, float, float, float] | None:
    if len(values) != 4:
        return None
    x_min, x_max, y_min, y_max = (float(v) for v in values)
    return x_min, y_min, x_max, y_max


def parse_classification(body: dict[str, Any], max_results: int) -> list[Finding]:
    """Findings from a classification/detection prediction (the first instance's)."""
    prediction = _predictions(body, 1)[0]
    names = prediction.get("displayNames") or []
    scores = prediction.get("confidences") or []
    boxes = prediction.get("bboxes")
    if len(names) != len(scores) or (boxes is not None and len(boxes) != len(names)):
        raise TransientError("vertex", "displayNames, confidences and bboxes differ in length")
    findings = [
        Finding(
            "object" if boxes is not None else "label",
            str(name).lower(),
            float(score),
            box=_box(boxes[i]) if boxes is not None else None,
        )
        for i, (name, score) in enumerate(zip(names, scores, strict=True))
    ]
    findings.sort(key=lambda f: f.score, reverse=True)
    return findings[:max_results]


def _unit(vector: Sequence[Any]) -> list[float]:
    values = [float(v) for v in vector]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def parse_zero_shot(body: dict[str, Any], labels: Sequence[str], max_results: int) -> list[Finding]:
    """Label findings scored by SigLIP's sigmoid over the image-text cosine similarity."""
    predictions = _predictions(body, 1 + len(labels))
    try:
        image = _unit(predictions[0]["embedding"])
        scale = math.exp(float(predictions[0]["model_temperature"]))
        bias = float(predictions[0]["model_bias"])
        texts = [_unit(p["embedding"]) for p in predictions[1:]]
    except (KeyError, TypeError, ValueError) as exc:
        raise TransientError("vertex", f"zero-shot prediction lacks {exc}") from None
    if any(len(t) != len(image) for t in texts):
        raise TransientError("vertex", "image and text embeddings differ in size")
    findings = []
    for label, text in zip(labels, texts, strict=True):
        logit = sum(a * b for a, b in zip(image, text, strict=True)) * scale + bias
        findings.append(Finding("label", label.lower(), 1.0 / (1.0 + math.exp(-logit))))
    findings.sort(key=lambda f: f.score, reverse=True)
    return findings[:max_results]


class _GoogleToken:
    """The function's own access token for the DICOM store (refreshed under a lock: one
    credentials object is shared by the instance's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: Any = None

    def __call__(self) -> str:
        import google.auth
        from google.auth.transport.requests import Request

        with self._lock:
            if self._credentials is None:
                self._credentials, _ = google.auth.default(scopes=[HEALTHCARE_SCOPE])
            if not self._credentials.valid:
                self._credentials.refresh(Request())
            return str(self._credentials.token)


def default_token_source(dicomweb_url: str) -> TokenSource:
    """Google's DICOM store needs the function's token; a local DICOMweb server needs none."""
    if uses_google_auth(dicomweb_url):
        return _GoogleToken()
    return lambda: None


class VertexAnalyzer:
    name = "google-vertex-ai"

    def __init__(
        self,
        settings: VertexSettings,
        *,
        api_base: str | None = None,
        token_source: TokenSource | None = None,
    ) -> None:
        self.settings = settings
        self.url = predict_url(settings, api_base)
        self._sessions = PerThreadSession(self.url)
        self._token_source = token_source

    @property
    def version(self) -> str:
        """The endpoint identifies the model deployment (its deployed model can change)."""
        return self.settings.endpoint.rsplit("/", 1)[-1]

    @property
    def reads_source(self) -> bool:
        """True when the model reads the instance itself (no rendering needed here)."""
        return self.settings.input == "dicomweb"

    def analyze(self, image: RenderedImage) -> list[Finding]:
        if self.reads_source:
            raise ValueError("a 'dicomweb' Vertex analyzer takes analyze_source(url)")
        return self._predict(pixels_instance(image.data))

    def analyze_source(self, instance_url: str) -> list[Finding]:
        """Ask the model to read the instance at `instance_url` (https DICOMweb) itself."""
        if not instance_url.startswith("https://"):
            raise PermanentError("rejected_by_server", "vertex dicomweb_uri must be https")
        token_source = self._token_source or default_token_source(instance_url)
        try:
            token = token_source()
        except Exception as exc:  # google.auth errors: metadata server or refresh failed
            raise TransientError("auth", type(exc).__name__) from None
        return self._predict(dicomweb_instance(instance_url, token))

    def _predict(self, image_instance: dict[str, Any]) -> list[Finding]:
        response = request_with_retries(
            self._sessions.get(),
            "POST",
            self.url,
            dependency="vertex",
            max_attempts=self.settings.max_attempts,
            timeout_s=self.settings.timeout_seconds,
            json=predict_request(image_instance, self.settings),
        )
        raise_for_status(response, "vertex")
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError("vertex", "response is not JSON") from exc
        if not isinstance(body, dict):
            raise TransientError("vertex", "response is not a JSON object")
        if self.settings.output == "zero_shot":
            return parse_zero_shot(body, self.settings.labels, self.settings.max_results)
        return parse_classification(body, self.settings.max_results)
