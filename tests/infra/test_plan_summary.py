"""The plan summary posted on pull requests and shown to approvers (scripts/ci/plan_summary.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "plan_summary", ROOT / "scripts" / "ci" / "plan_summary.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _change(address: str, *actions: str) -> dict[str, object]:
    return {"address": address, "change": {"actions": list(actions)}}


def test_counts_each_action_and_puts_destruction_first() -> None:
    plan = {
        "resource_changes": [
            _change("google_pubsub_topic.a", "create"),
            _change("google_pubsub_topic.b", "create"),
            _change("google_storage_bucket.s", "update"),
            _change("google_healthcare_dataset.d", "delete", "create"),
            _change("google_service_account.x", "no-op"),
            _change("data.google_project.p", "read"),
        ]
    }
    text = _module().summarize("prod", plan)
    assert text.startswith("<!-- imaging-plan-summary -->\n### Plan for `prod`: ")
    assert "1 replace (destroy, then create), 1 update in place, 2 create" in text
    assert "**1 resource(s) will be destroyed or replaced.**" in text
    assert text.index("google_healthcare_dataset.d") < text.index("google_pubsub_topic.a")
    assert "google_service_account.x" not in text and "data.google_project" not in text


def test_an_empty_plan_says_so() -> None:
    text = _module().summarize("dev", {"resource_changes": []})
    assert "### Plan for `dev`: no changes" in text
    assert "destroyed" not in text


def test_long_lists_are_cut_with_a_pointer_to_the_artifact() -> None:
    plan = {"resource_changes": [_change(f"t.r{i:03}", "create") for i in range(75)]}
    text = _module().summarize("dev", plan)
    assert "75 create" in text
    assert "- ... and 15 more (see the plan artifact)" in text
