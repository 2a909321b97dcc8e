"""Turn findings into a priority with the per-environment rules from `PipelineSettings`.

A rule matches a finding of its kind whose score reaches `min_score`; label/object rules also
need one of their terms in the finding's description (whole-word, case-insensitive), and `text`
rules one of their terms among the words of a burned-in-text finding. The highest priority of
all matches wins; no match is `routine`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.settings import Priority, Rule

PRIORITY_ORDER: dict[Priority, int] = {"routine": 0, "urgent": 1, "critical": 2}


@dataclass(frozen=True)
class Match:
    rule: Rule
    finding: Finding


@dataclass(frozen=True)
class Assessment:
    priority: Priority
    matches: tuple[Match, ...]

    @property
    def critical(self) -> tuple[Match, ...]:
        return tuple(m for m in self.matches if m.rule.priority == "critical")

    def priority_of(self, finding: Finding) -> Priority:
        """The highest priority any rule gave this finding (`routine` when none matched)."""
        return highest(m.rule.priority for m in self.matches if m.finding is finding)


def highest(priorities: Iterable[Priority]) -> Priority:
    result: Priority = "routine"
    for priority in priorities:
        if PRIORITY_ORDER[priority] > PRIORITY_ORDER[result]:
            result = priority
    return result


def _has_term(text: str, terms: Iterable[str]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text) for term in terms)


def matches(rule: Rule, finding: Finding) -> bool:
    if finding.score < rule.min_score:
        return False
    if rule.finding == "text":
        return finding.kind == "burned_in_text" and _has_term(" ".join(finding.words), rule.terms)
    if rule.finding != finding.kind:
        return False
    return not rule.terms or _has_term(finding.description.lower(), rule.terms)


def assess(findings: Sequence[Finding], rules: Sequence[Rule]) -> Assessment:
    found = tuple(Match(r, f) for f in findings for r in rules if matches(r, f))
    return Assessment(highest(m.rule.priority for m in found), found)
