"""Monthly cost of one environment at a given image rate, from its own configuration.

Pure functions over the environment config (routes, Vision features, function sizing, CMEK,
log retention) and imaging_cli/cost_data.yaml (prices with source and date, assumptions, what
bench/e2e measured). No network: the numbers are list prices, free tiers and discounts left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from imaging_pipeline.settings import ALL_VISION_FEATURES, PipelineSettings

DATA_FILE = Path(__file__).resolve().with_name("cost_data.yaml")
GIB = 2**30
TIB = 2**40


def load_data(path: Path = DATA_FILE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Sizing:
    """The processor's sizing (stacks.config.FunctionSizing, without importing the stack)."""

    memory_mib: int
    cpu: float
    min_instances: int
    max_instances: int
    concurrency: int


@dataclass
class Estimate:
    images_per_day: float
    lines: dict[str, float] = field(default_factory=dict)  # USD per month by item
    instances_at_peak: float = 0.0
    max_instances: int = 0
    vision_requests_per_minute_at_peak: float = 0.0
    vision_quota_per_minute: float = 0.0
    vertex_nodes: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.lines.values())

    @property
    def per_1000_images(self) -> float:
        return self.total / (self.images_per_day * 30.4375) * 1000


def _vision_unit_price(feature: str, monthly_units: float, prices: Mapping[str, Any]) -> float:
    """Mean price per image of one feature at this monthly volume (tiered at 5 M units)."""
    tiers = prices[feature]
    if monthly_units <= 5_000_000:
        return float(tiers["first_5m"]) / 1000
    first = 5_000_000 * float(tiers["first_5m"])
    rest = (monthly_units - 5_000_000) * float(tiers["above_5m"])
    return (first + rest) / monthly_units / 1000


def normalise_mix(mix: Mapping[str, float]) -> dict[str, float]:
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("the modality mix must have a positive share")
    return {m.upper(): share / total for m, share in mix.items() if share > 0}


def estimate(
    pipeline: PipelineSettings,
    sizing: Sizing,
    *,
    cmek: bool,
    log_days: int,
    images_per_day: float,
    mix: Mapping[str, float] | None = None,
    data: Mapping[str, Any] | None = None,
) -> Estimate:
    data = data or load_data()
    prices, assume, measured = data["prices"], data["assumptions"], data["measured"]
    shares = normalise_mix(mix or assume["default_mix"])
    month = float(assume["seconds_per_month"])
    per_month = images_per_day * month / 86400
    peak_per_s = images_per_day / 86400 * float(assume["peak_to_average"])
    out = Estimate(images_per_day=images_per_day, max_instances=sizing.max_instances)

    # Analysis: what each modality's route asks for.
    analyzed = {m: s for m, s in shares.items() if m in pipeline.modalities}
    feature_units: dict[str, float] = {"labels": 0.0, "objects": 0.0, "text": 0.0}
    vision_images = 0.0
    vertex_images: dict[str, float] = {}
    for modality, share in analyzed.items():
        route = pipeline.route_for(modality)
        if route.analyzer == "vision":
            vision_images += share * per_month
            for feature in pipeline.vision_features_for(route):
                feature_units[feature] += share * per_month
        elif route.analyzer == "vertex":
            assert route.vertex is not None
            key = route.vertex.endpoint
            vertex_images[key] = vertex_images.get(key, 0.0) + share
    vision_prices = prices["vision_per_1000_images"]
    out.lines["Cloud Vision"] = sum(
        units * _vision_unit_price(f, units, vision_prices) for f, units in feature_units.items()
    )
    node_price = float(prices["vertex_prediction_node_hour"][assume["vertex_node"]])
    capacity = float(assume["vertex_images_per_node_second"]["value"])
    vertex_cost = 0.0
    for endpoint, share in vertex_images.items():
        nodes = max(int(assume["vertex_min_nodes"]), math.ceil(share * peak_per_s / capacity))
        out.vertex_nodes[endpoint] = nodes
        vertex_cost += nodes * node_price * month / 3600
    out.lines["Vertex AI endpoints"] = vertex_cost

    # The processor: billed instance time per event at its concurrency (measured), plus idle
    # minimum instances. An instance busy with C concurrent events bills once for all C.
    instance_s = (
        float(assume["instance_seconds_per_event_concurrent"]["value"])
        if sizing.concurrency > 1
        else float(measured["instance_seconds_per_event_concurrency_1"])
    )
    fn = prices["functions"]
    gib = sizing.memory_mib / 1024
    busy = per_month * instance_s
    out.lines["Cloud Run functions"] = (
        busy * (sizing.cpu * fn["vcpu_second"] + gib * fn["gib_second"])
        + per_month / 1e6 * fn["per_million_requests"]
        + sizing.min_instances
        * max(0.0, month - busy / max(1, sizing.min_instances))
        * (sizing.cpu * fn["idle_vcpu_second"] + gib * fn["idle_gib_second"])
    )
    # Little's law: instances busy at the peak rate = rate x billed seconds per event.
    out.instances_at_peak = peak_per_s * instance_s

    hc = prices["healthcare"]
    requests = per_month * float(assume["healthcare_requests_per_event"]["value"])
    out.lines["Healthcare API requests"] = requests / 1e5 * hc["per_100k_requests"]
    stored_gib = sum(
        share * per_month * float(assume["instance_mb"].get(m, 1.0)) * 1e6 / GIB
        for m, share in shares.items()
    )
    out.lines["DICOM storage (one month's images)"] = stored_gib * hc["dicom_blob_gib_month"]
    out.lines["Pub/Sub"] = (
        per_month
        * float(assume["pubsub_bytes_per_event"]["value"])
        / TIB
        * prices["pubsub"]["per_tib"]
    )
    log_gib = per_month * float(assume["log_bytes_per_event"]["value"]) / GIB
    logging = prices["logging"]
    out.lines["Cloud Logging"] = log_gib * (
        logging["ingestion_gib"]
        + max(0, log_days - 30) / 30.4375 * logging["retention_gib_month_after_30_days"]
    )
    out.lines["Cloud KMS"] = (
        float(assume["kms_keys"]) * prices["kms"]["key_version_month"] if cmek else 0.0
    )

    out.vision_quota_per_minute = float(assume["vision_quota_per_minute"])
    vision_share = sum(s for m, s in analyzed.items() if pipeline.route_for(m).analyzer == "vision")
    out.vision_requests_per_minute_at_peak = vision_share * peak_per_s * 60
    if out.instances_at_peak > sizing.max_instances:
        out.warnings.append(
            f"max_instances ({sizing.max_instances}) caps throughput: the peak needs "
            f"{out.instances_at_peak:.0f} instances at concurrency {sizing.concurrency}"
        )
    if out.vision_requests_per_minute_at_peak > out.vision_quota_per_minute:
        out.warnings.append(
            f"the Vision quota ({out.vision_quota_per_minute:.0f} requests/min) caps "
            f"throughput: the peak needs {out.vision_requests_per_minute_at_peak:.0f}/min "
            "(ask for more quota or route fewer modalities to Vision)"
        )
    return out


def today_baseline(pipeline: PipelineSettings) -> PipelineSettings:
    """The configuration before routing: Vision with all three features for every modality,
    keeping everything else (the comparison `imaging cost --compare-today` prints)."""
    vision = pipeline.vision.model_copy(update={"features": ALL_VISION_FEATURES})
    return pipeline.model_copy(update={"analyzer": "vision", "routes": {}, "vision": vision})
