"""Markdown summary of a saved Terraform plan (`terraform show -json tfplan`), for the pull
request comment and the deploy run's summary: counts per action, then each changed address,
destructive changes first so a reviewer cannot miss them.

usage: python scripts/ci/plan_summary.py ENVIRONMENT plan.json > plan.md
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MARKER = "<!-- imaging-plan-summary -->"
# Terraform's action lists, in the order a reviewer should read them.
ACTIONS = (
    (("delete", "create"), "replace (destroy, then create)"),
    (("create", "delete"), "replace (create, then destroy)"),
    (("delete",), "destroy"),
    (("update",), "update in place"),
    (("create",), "create"),
)
MAX_LISTED = 60


def summarize(environment: str, plan: dict[str, Any]) -> str:
    by_action: dict[str, list[str]] = {label: [] for _, label in ACTIONS}
    labels = dict(ACTIONS)
    for change in plan.get("resource_changes", []):
        label = labels.get(tuple(change["change"]["actions"]))
        if label is not None:
            by_action[label].append(change["address"])
    counts = ", ".join(f"{len(v)} {k}" for k, v in by_action.items() if v) or "no changes"
    lines = [MARKER, f"### Plan for `{environment}`: {counts}", ""]
    destructive = sum(len(by_action[label]) for _, label in ACTIONS[:3])
    if destructive:
        lines += [f"**{destructive} resource(s) will be destroyed or replaced.**", ""]
    for label, addresses in by_action.items():
        if not addresses:
            continue
        lines.append(f"<details><summary>{label}: {len(addresses)}</summary>\n")
        lines += [f"- `{a}`" for a in sorted(addresses)[:MAX_LISTED]]
        if len(addresses) > MAX_LISTED:
            lines.append(f"- ... and {len(addresses) - MAX_LISTED} more (see the plan artifact)")
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    environment, path = argv
    sys.stdout.write(summarize(environment, json.loads(Path(path).read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
