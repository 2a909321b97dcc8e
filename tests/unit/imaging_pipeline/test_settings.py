"""PipelineSettings: rules and allow-lists are validated before they reach a function."""

from __future__ import annotations

from typing import Any

import pytest
from imaging_pipeline.settings import PipelineSettings, Rule
from pydantic import ValidationError


def test_defaults_are_valid_and_round_trip_through_json() -> None:
    settings = PipelineSettings()
    assert PipelineSettings.model_validate_json(settings.model_dump_json()) == settings


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ({"name": "x", "finding": "label", "priority": "critical"}, "needs 'terms'"),
        (
            {"name": "x", "finding": "blank_image", "terms": ["a"], "priority": "urgent"},
            "'terms' only apply",
        ),
        ({"name": "Bad Name", "finding": "exposure", "priority": "urgent"}, "name"),
        (
            {
                "name": "x",
                "finding": "label",
                "terms": ["a"],
                "min_score": 1.5,
                "priority": "critical",
            },
            "min_score",
        ),
        ({"name": "x", "finding": "label", "terms": ["a"], "priority": "panic"}, "priority"),
    ],
)
def test_invalid_rules_are_rejected(rule: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        Rule.model_validate(rule)


def test_terms_are_normalised() -> None:
    rule = Rule(name="x", finding="object", terms=(" Pneumothorax ", ""), priority="critical")
    assert rule.terms == ("pneumothorax",)


def test_duplicate_rule_names_are_rejected() -> None:
    rule = {"name": "same", "finding": "exposure", "priority": "urgent"}
    with pytest.raises(ValidationError, match="duplicate rule names: same"):
        PipelineSettings.model_validate({"rules": [rule, rule]})


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        PipelineSettings.model_validate({"analyser": "local"})
    with pytest.raises(ValidationError):
        PipelineSettings.model_validate({"vision": {"timeout_seconds": 0}})
