"""Every alert policy links to a runbook section that exists and says what an operator needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synthesized import of_type

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?P<file>docs/[\w./-]+\.md)#(?P<anchor>[\w-]+)")
PARTS = ("**What it means.**", "**Check first.**", "**Log queries.**", "**How to fix.**")


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lowercase, punctuation dropped, spaces
    to hyphens (underscores and hyphens kept)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def sections(markdown: str) -> dict[str, str]:
    """Level-2 sections by anchor."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^## ", markdown, flags=re.MULTILINE)[1:]:
        heading, _, body = chunk.partition("\n")
        found[github_anchor(heading)] = body
    return found


def test_anchor_rule_matches_github() -> None:
    assert github_anchor("Alert failure_ratio") == "alert-failure_ratio"
    assert github_anchor("What's new: v1.2") == "whats-new-v12"


def test_every_alert_policy_links_to_a_complete_runbook_section(
    stacks: dict[str, dict[str, Any]],
) -> None:
    policies = [
        p for stack in stacks.values() for p in of_type(stack, "google_monitoring_alert_policy")
    ]
    assert policies
    problems = []
    for policy in policies:
        content = policy.body.get("documentation", {}).get("content", "")
        link = LINK.search(content)
        if not link:
            problems.append(f"{policy.path}: no runbook link in {content!r}")
            continue
        page = ROOT / link["file"]
        found = sections(page.read_text(encoding="utf-8")) if page.is_file() else {}
        body = found.get(link["anchor"])
        if body is None:
            problems.append(f"{policy.path}: {link[0]} has no such section")
            continue
        missing = [part for part in PARTS if part not in body]
        if missing:
            problems.append(f"{policy.path}: {link[0]} lacks {missing}")
    assert problems == []


@pytest.mark.parametrize("broken", ["docs/runbooks.md#alert-nope", "docs/nope.md#alert-x"])
def test_a_dangling_link_is_reported(broken: str) -> None:
    link = LINK.search(f"Runbook: {broken} (...)")
    assert link is not None
    page = ROOT / link["file"]
    found = sections(page.read_text(encoding="utf-8")) if page.is_file() else {}
    assert link["anchor"] not in found
