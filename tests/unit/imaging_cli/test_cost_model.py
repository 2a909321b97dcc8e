"""`imaging cost`: the estimate follows the environment's routes, sizing and the price file."""

from __future__ import annotations

from pathlib import Path

import pytest
from imaging_pipeline.settings import PipelineSettings

from imaging_cli.cost_model import Sizing, estimate, load_data, today_baseline
from imaging_cli.main import main
from stacks.config import load_environment

ROOT = Path(__file__).resolve().parents[3]
SIZING = Sizing(memory_mib=1024, cpu=1.0, min_instances=0, max_instances=100, concurrency=1)


def test_every_price_has_a_source_and_a_date() -> None:
    for name, price in load_data()["prices"].items():
        assert str(price["source"]).startswith("https://"), name
        assert len(str(price["date"])) == 10, name


def test_all_three_vision_features_cost_5_25_per_1000_images() -> None:
    result = estimate(
        PipelineSettings(), SIZING, cmek=False, log_days=30, images_per_day=10_000, mix={"CT": 1}
    )
    per_month = 10_000 * 30.4375
    assert result.lines["Cloud Vision"] == pytest.approx(5.25 * per_month / 1000)


def test_routing_prices_only_the_routed_features() -> None:
    routed = PipelineSettings.model_validate(
        {"vision": {"features": ["text"]}, "routes": {"CT": {"analyzer": "none"}}}
    )
    mix = {"CT": 0.5, "US": 0.5}
    result = estimate(routed, SIZING, cmek=False, log_days=30, images_per_day=10_000, mix=mix)
    per_month = 10_000 * 30.4375
    assert result.lines["Cloud Vision"] == pytest.approx(0.5 * per_month * 1.50 / 1000)


def test_tiered_vision_price_above_5_million_units() -> None:
    result = estimate(
        PipelineSettings.model_validate({"vision": {"features": ["text"]}}),
        SIZING,
        cmek=False,
        log_days=30,
        images_per_day=1_000_000,
        mix={"US": 1},
    )
    units = 1_000_000 * 30.4375
    expected = (5_000_000 * 1.50 + (units - 5_000_000) * 0.60) / 1000
    assert result.lines["Cloud Vision"] == pytest.approx(expected)


def test_caps_are_warned_about() -> None:
    small = Sizing(memory_mib=512, cpu=1.0, min_instances=0, max_instances=2, concurrency=1)
    result = estimate(PipelineSettings(), small, cmek=False, log_days=30, images_per_day=10_000_000)
    assert any("max_instances (2) caps" in w for w in result.warnings)
    assert any("Vision quota" in w for w in result.warnings)


def test_prod_costs_at_most_a_third_of_today_per_1000_images() -> None:
    env = load_environment(ROOT / "environments" / "prod.yaml")
    fn = env.config.functions.processor
    sizing = Sizing(
        fn.memory_mib, float(fn.cpu), fn.min_instances, fn.max_instances, fn.concurrency
    )
    before = Sizing(fn.memory_mib, float(fn.cpu), fn.min_instances, fn.max_instances, 1)
    kwargs = {"cmek": True, "log_days": env.config.retention.log_days, "images_per_day": 1_000_000}
    now = estimate(env.config.pipeline, sizing, **kwargs)  # type: ignore[arg-type]
    today = estimate(today_baseline(env.config.pipeline), before, **kwargs)  # type: ignore[arg-type]
    assert now.per_1000_images <= today.per_1000_images / 3
    # Text detection stays wherever burned-in text occurs.
    for modality in ("US", "SC", "XA", "OT", "RF", "XC"):
        route = env.config.pipeline.route_for(modality)
        assert route.analyzer == "vision"
        assert "text" in env.config.pipeline.vision_features_for(route)


def test_the_command_prints_an_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "prod", "--images-per-day", "10000", "--compare-today"]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "before routing" in out and "Cloud Vision" in out


def test_bad_mix_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "prod", "--images-per-day", "10", "--mix", "CT"]) == 2
    assert "--mix" in capsys.readouterr().err
