"""Writes the inventory of a new environment from its synthesized stack.

    .venv/bin/python -m tests.infra.write_inventory qa [--like staging]

The inventory pins what the stack is *now* (resource counts, the key values the template
inventory checks, outputs); review the file like any other change, then commit it. Values are
taken for the construct paths and keys the template (`--like`, default: the first existing
inventory) lists, so the new inventory checks the same things as the others.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.infra.synthesized import load_stacks, resources, run_synth

INVENTORY = Path(__file__).resolve().parent / "inventory"
HEADER = (
    "# Synthesized {env} stack: resource counts, key values, outputs (see prod.yaml for the\n"
    "# format). Written by `python -m tests.infra.write_inventory {env} --like {like}`.\n"
)


def inventory_path(env: str) -> Path:
    return INVENTORY / f"{env}.yaml"


def symbolic(value: Any, addresses: dict[str, str]) -> Any:
    """Real references `${type.key.attr}` back to the inventory's `${construct/path.attr}`."""
    if isinstance(value, str):
        return re.sub(
            r"\$\{([a-z0-9_]+\.[A-Za-z0-9_-]+)\.",
            lambda m: "${" + addresses.get(m.group(1), m.group(1)) + ".",
            value,
        )
    if isinstance(value, dict):
        return {k: symbolic(v, addresses) for k, v in value.items()}
    if isinstance(value, list):
        return [symbolic(v, addresses) for v in value]
    return value


def _like(template: Any, actual: Any) -> Any:
    """The part of `actual` that `template` selects (same keys; lists taken whole)."""
    if isinstance(template, dict) and isinstance(actual, dict):
        return {k: _like(v, actual[k]) for k, v in template.items() if k in actual}
    return actual


def build_inventory(stack: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    by_path = {r.path: r for r in resources(stack)}
    addresses = {r.address: r.path for r in by_path.values()}
    values = {
        path: symbolic(_like(selected, by_path[path].body), addresses)
        for path, selected in template["values"].items()
        if path in by_path
    }
    return {
        "counts": {t: len(items) for t, items in sorted(stack["resource"].items())},
        "data_counts": {t: len(items) for t, items in sorted(stack.get("data", {}).items())},
        "outputs": {n: symbolic(b["value"], addresses) for n, b in stack["output"].items()},
        "values": values,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.infra.write_inventory")
    parser.add_argument("env", help="environment name (environments/ENV.yaml)")
    parser.add_argument("--like", help="inventory to take the checked paths and keys from")
    parser.add_argument("--force", action="store_true", help="overwrite an existing inventory")
    args = parser.parse_args(argv)
    target = inventory_path(args.env)
    if target.exists() and not args.force:
        print(f"{target} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    existing = sorted(p.stem for p in INVENTORY.glob("*.yaml") if p.stem != args.env)
    like = args.like or (existing[0] if existing else None)
    if like is None or not inventory_path(like).exists():
        print(f"no template inventory {like!r} in {INVENTORY}", file=sys.stderr)
        return 2
    template = yaml.safe_load(inventory_path(like).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        result = run_synth(Path(tmp) / "out", environments=(args.env,))
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr, end="")
            return result.returncode
        stack = load_stacks(Path(tmp) / "out")[args.env]
    inventory = build_inventory(stack, template)
    text = yaml.safe_dump(inventory, sort_keys=False, width=100, allow_unicode=True)
    target.write_text(HEADER.format(env=args.env, like=like) + text, encoding="utf-8")
    print(f"wrote {target} ({len(inventory['values'])} checked resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
