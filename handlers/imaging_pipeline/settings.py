"""Pipeline settings shared by the function (read from its environment) and the stack schema.

The stack validates them per environment at synth time and passes them to the function as
JSON in `PIPELINE_SETTINGS`, so a bad rule fails `cdktn synth`, not a production event.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Priority = Literal["routine", "urgent", "critical"]
# What analyzers report (imaging_pipeline.analysis.base.Finding.kind). A `text` rule matches the
# words of a `burned_in_text` finding against its terms; the words themselves never leave the
# process (they may be a patient's name).
FindingKind = Literal["burned_in_text", "label", "object", "text", "blank_image", "exposure"]
TERM_KINDS = frozenset({"label", "object", "text"})
# What each analyzer can report (`text` rules match burned-in-text words): a rule of any other
# kind could never fire, so the stack refuses it at synth time (stacks/validations.py).
ANALYZER_FINDINGS: dict[str, frozenset[str]] = {
    "vision": frozenset({"label", "object", "burned_in_text", "text"}),
    "local": frozenset({"burned_in_text", "text", "blank_image", "exposure"}),
    "vertex": frozenset({"label", "object"}),  # the model's labels (and boxes)
    "none": frozenset(),
}

# Modalities whose objects carry no image to analyze (or are our own outputs); never processed.
NON_IMAGE_MODALITIES = frozenset(
    {
        "SR",
        "SEG",
        "PR",
        "KO",
        "DOC",
        "RTSTRUCT",
        "RTPLAN",
        "RTDOSE",
        "RTRECORD",
        "REG",
        "FID",
        "OT_PDF",
    }
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """Turns a finding into a priority: the highest priority of all matching rules wins."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_-]*$")
    finding: FindingKind
    terms: tuple[str, ...] = Field(
        default=(), description="Case-insensitive terms a label/object/text finding must match."
    )
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    priority: Priority

    @field_validator("terms")
    @classmethod
    def _lower(cls, terms: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in terms if t.strip())

    @model_validator(mode="after")
    def _terms_fit_kind(self) -> Rule:
        if self.finding in TERM_KINDS and not self.terms:
            raise ValueError(f"a '{self.finding}' rule needs 'terms' (else it matches anything)")
        if self.finding not in TERM_KINDS and self.terms:
            raise ValueError(f"'terms' only apply to {', '.join(sorted(TERM_KINDS))} rules")
        return self


class RenderSettings(_Strict):
    max_size: int = Field(default=1024, ge=64, le=8192, description="Longest side in pixels.")
    format: Literal["jpeg", "png"] = "jpeg"


# Cloud Vision features by the names the config uses; Vision bills each feature per image.
VisionFeature = Literal["labels", "objects", "text"]
ALL_VISION_FEATURES: tuple[VisionFeature, ...] = ("labels", "objects", "text")
# `none`: the modality is recorded as skipped without being retrieved or analyzed (no cost).
AnalyzerKind = Literal["vision", "vertex", "local", "none"]
# A Vertex AI endpoint serves particular modalities: it is chosen per route, never by default.
DefaultAnalyzer = Literal["vision", "local", "none"]


def _unique_features(features: tuple[VisionFeature, ...]) -> tuple[VisionFeature, ...]:
    if len(set(features)) != len(features):
        raise ValueError("each Vision feature may be listed once")
    return features


class VisionSettings(_Strict):
    """Cloud Vision: one annotate request with the selected features (default all three)."""

    features: tuple[VisionFeature, ...] = Field(
        default=ALL_VISION_FEATURES,
        min_length=1,
        description="Features requested per image (each is billed): labels, objects, text.",
    )

    timeout_seconds: float = Field(default=20.0, gt=0, le=120, description="Per attempt.")
    max_attempts: int = Field(
        default=4, ge=1, le=10, description="Attempts on 429/5xx/network errors, then transient."
    )
    max_results: int = Field(default=10, ge=1, le=50, description="Labels and objects per image.")

    @field_validator("features")
    @classmethod
    def _features(cls, features: tuple[VisionFeature, ...]) -> tuple[VisionFeature, ...]:
        return _unique_features(features)


class VertexSettings(_Strict):
    """A Vertex AI endpoint serving an image model (the model is the operator's choice)."""

    endpoint: str = Field(
        pattern=r"^projects/[a-z0-9-]{6,30}/locations/[a-z0-9-]+/endpoints/[A-Za-z0-9_-]+$",
        description="Endpoint resource name: projects/P/locations/L/endpoints/E.",
    )
    dedicated_domain: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9.-]*\.prediction\.vertexai\.goog$",
        description="DNS name of a dedicated endpoint (Model Garden's default), else shared.",
    )
    input: Literal["pixels", "dicomweb"] = Field(
        default="pixels",
        description="`pixels`: the rendered image; `dicomweb`: the instance URL plus the "
        "function's access token (the model reads the source itself).",
    )
    output: Literal["classification", "zero_shot"] = Field(
        default="classification",
        description="`classification`: predictions carry displayNames/confidences (optional "
        "bboxes); `zero_shot`: embeddings (MedSigLIP) scored against `labels`.",
    )
    labels: tuple[str, ...] = Field(
        default=(), description="Zero-shot label texts, each scored against the image."
    )
    max_results: int = Field(default=10, ge=1, le=50, description="Findings kept per image.")
    timeout_seconds: float = Field(default=30.0, gt=0, le=300, description="Per attempt.")
    max_attempts: int = Field(
        default=4, ge=1, le=10, description="Attempts on 429/5xx/network errors, then transient."
    )

    @model_validator(mode="after")
    def _labels_for_zero_shot(self) -> VertexSettings:
        if self.output == "zero_shot" and not self.labels:
            raise ValueError("a 'zero_shot' model needs 'labels' to score")
        return self

    @property
    def location(self) -> str:
        return self.endpoint.split("/")[3]


class ModalityRoute(_Strict):
    """Which analysis one modality gets, so an image pays only for what is useful for it."""

    analyzer: AnalyzerKind = Field(description="vision, vertex, local or none.")
    vision_features: tuple[VisionFeature, ...] | None = Field(
        default=None,
        min_length=1,
        description="Vision features for this modality (default: `pipeline.vision.features`).",
    )
    vertex: VertexSettings | None = Field(
        default=None, description="The endpoint, required when `analyzer` is `vertex`."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModalityRoute:
        _require_vertex(self.analyzer, self.vertex)
        if self.vision_features is not None:
            if self.analyzer != "vision":
                raise ValueError("'vision_features' only applies to analyzer 'vision'")
            _unique_features(self.vision_features)
        return self


def _require_vertex(analyzer: AnalyzerKind, vertex: VertexSettings | None) -> None:
    if analyzer == "vertex" and vertex is None:
        raise ValueError("analyzer 'vertex' needs 'vertex' (at least its 'endpoint')")
    if analyzer != "vertex" and vertex is not None:
        raise ValueError("'vertex' only applies to analyzer 'vertex'")


class LocalAnalyzerSettings(_Strict):
    """The offline analyzer (Tesseract OCR plus exposure and blank-image checks)."""

    ocr_min_confidence: int = Field(
        default=70, ge=0, le=100, description="Tesseract word confidence (0-100) to count."
    )
    ocr_timeout_seconds: float = Field(default=30.0, gt=0, le=300)


class FhirSettings(_Strict):
    patient_identifier_system: str = Field(
        default="urn:imaging-pipeline:patient-id",
        pattern=r"^(urn|https?):\S+$",
        description="Identifier system of DICOM Patient ID when the instance has no issuer.",
    )


class PipelineSettings(_Strict):
    analyzer: DefaultAnalyzer = Field(
        default="vision",
        description="Analyzer of modalities without a route: Cloud Vision in the cloud, the "
        "offline analyzer locally, or none.",
    )
    modalities: tuple[str, ...] = Field(
        default=("CT", "MR", "CR", "DX", "MG", "US", "XA", "RF", "NM", "PT", "OT", "XC"),
        description="Modality allow-list; non-image objects are always skipped.",
    )
    render: RenderSettings = RenderSettings()
    vision: VisionSettings = VisionSettings()
    routes: dict[str, ModalityRoute] = Field(
        default_factory=dict,
        description="Per-modality analysis (e.g. DX: a Vertex chest model; US: Vision text only).",
    )
    local_analyzer: LocalAnalyzerSettings = LocalAnalyzerSettings()
    fhir: FhirSettings = FhirSettings()
    structured_report: bool = Field(
        default=True,
        description="Store a DICOM SR (TID 1500) of each analysis next to the images (STOW-RS).",
    )
    rules: tuple[Rule, ...] = (
        Rule(name="burned-in-text", finding="burned_in_text", min_score=0.6, priority="urgent"),
        Rule(name="blank-image", finding="blank_image", min_score=0.9, priority="urgent"),
    )

    @model_validator(mode="before")
    @classmethod
    def _default_rules_fit_analyzer(cls, data: object) -> object:
        """Without `rules`, only the default rules the chosen analyzer can fire."""
        if isinstance(data, dict) and "rules" not in data:
            emitted = ANALYZER_FINDINGS.get(str(data.get("analyzer", "vision")), frozenset())
            default = cls.model_fields["rules"].default
            data = {**data, "rules": tuple(r for r in default if r.finding in emitted)}
        return data

    @field_validator("modalities")
    @classmethod
    def _image_modalities(cls, modalities: tuple[str, ...]) -> tuple[str, ...]:
        upper = tuple(m.strip().upper() for m in modalities)
        bad = sorted(set(upper) & NON_IMAGE_MODALITIES)
        if bad:
            raise ValueError(f"non-image modalities cannot be analyzed: {', '.join(bad)}")
        return upper

    @field_validator("routes")
    @classmethod
    def _route_keys(cls, routes: dict[str, ModalityRoute]) -> dict[str, ModalityRoute]:
        upper = {m.strip().upper(): route for m, route in routes.items()}
        if len(upper) != len(routes):
            raise ValueError("a modality is routed twice (keys are case-insensitive)")
        bad = sorted(set(upper) & NON_IMAGE_MODALITIES)
        if bad:
            raise ValueError(f"non-image modalities cannot be routed: {', '.join(bad)}")
        return upper

    @model_validator(mode="after")
    def _routed_modalities_are_allowed(self) -> PipelineSettings:
        unknown = sorted(set(self.routes) - set(self.modalities))
        if unknown:
            raise ValueError(f"routes for modalities not in 'modalities': {', '.join(unknown)}")
        return self

    def route_for(self, modality: str | None) -> ModalityRoute:
        """The route of a modality: its own entry, else the environment's default analyzer."""
        route = self.routes.get((modality or "").strip().upper())
        if route is not None:
            return route
        return ModalityRoute(analyzer=self.analyzer)

    def vision_features_for(self, route: ModalityRoute) -> tuple[VisionFeature, ...]:
        return route.vision_features or self.vision.features

    def vertex_endpoints(self) -> tuple[str, ...]:
        """Every Vertex AI endpoint a route uses (the stack grants prediction on each)."""
        return tuple(sorted({r.vertex.endpoint for r in self.routes.values() if r.vertex}))

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule names: {', '.join(duplicates)}")
        return rules
