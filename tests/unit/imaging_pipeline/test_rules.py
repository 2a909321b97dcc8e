"""Rules turn findings into a priority; the highest match wins."""

from __future__ import annotations

from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.rules import assess, matches
from imaging_pipeline.settings import PipelineSettings, Rule

CRITICAL = Rule(
    name="critical-terms",
    finding="label",
    terms=("pneumothorax", "fracture"),
    min_score=0.8,
    priority="critical",
)
OBJECTS = Rule(
    name="devices", finding="object", terms=("scalpel",), min_score=0.5, priority="urgent"
)
TEXT = Rule(name="deid-review", finding="burned_in_text", min_score=0.6, priority="urgent")
WORDS = Rule(name="stat", finding="text", terms=("stat",), min_score=0.5, priority="critical")


def test_label_above_threshold_with_term_is_critical() -> None:
    finding = Finding("label", "tension pneumothorax", 0.91)
    result = assess([finding], [CRITICAL, TEXT])
    assert result.priority == "critical"
    assert [m.finding for m in result.critical] == [finding]
    assert result.priority_of(finding) == "critical"


def test_below_threshold_or_other_term_is_routine() -> None:
    assert assess([Finding("label", "pneumothorax", 0.79)], [CRITICAL]).priority == "routine"
    assert assess([Finding("label", "radiography", 0.99)], [CRITICAL]).priority == "routine"
    assert assess([], [CRITICAL]).priority == "routine"


def test_terms_match_whole_words_only() -> None:
    assert not matches(CRITICAL, Finding("label", "nonfracture pattern", 0.9))
    assert matches(CRITICAL, Finding("label", "Fracture", 0.9))


def test_rule_kind_must_match_finding_kind() -> None:
    assert not matches(OBJECTS, Finding("label", "scalpel", 0.9))
    assert matches(OBJECTS, Finding("object", "scalpel", 0.9))


def test_burned_in_text_flags_deidentification_review() -> None:
    finding = Finding("burned_in_text", "burned-in text (3 words)", 0.8, words=("a", "b", "c"))
    result = assess([finding], [TEXT, CRITICAL])
    assert result.priority == "urgent" and result.critical == ()
    assert [m.rule.name for m in result.matches] == ["deid-review"]


def test_text_rules_match_recognised_words() -> None:
    hit = Finding("burned_in_text", "burned-in text (2 words)", 0.7, words=("stat", "portable"))
    miss = Finding("burned_in_text", "burned-in text (1 words)", 0.7, words=("status",))
    assert matches(WORDS, hit) and not matches(WORDS, miss)
    assert not matches(WORDS, Finding("label", "stat", 0.9))


def test_highest_priority_wins_across_findings() -> None:
    findings = [
        Finding("burned_in_text", "t", 0.9, words=("x", "y")),
        Finding("label", "fracture", 0.95),
    ]
    result = assess(findings, [TEXT, CRITICAL])
    assert result.priority == "critical"
    assert result.priority_of(findings[0]) == "urgent"


def test_default_rules_flag_blank_images() -> None:
    rules = PipelineSettings(analyzer="local").rules
    assert assess([Finding("blank_image", "blank", 0.99)], rules).priority == "urgent"


def test_default_rules_are_only_those_the_analyzer_can_fire() -> None:
    """Cloud Vision never reports blank images: its defaults keep only the burned-in-text rule."""
    assert [r.finding for r in PipelineSettings().rules] == ["burned_in_text"]
    assert [r.finding for r in PipelineSettings(analyzer="local").rules] == [
        "burned_in_text",
        "blank_image",
    ]
