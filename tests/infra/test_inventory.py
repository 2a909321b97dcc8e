"""Inventory tests: each environment's synthesized stack against tests/infra/inventory/<env>.yaml
(resource counts by type, key values by construct path, outputs), Cloud Foundation Fabric style.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import ENVIRONMENTS
from tests.infra.synthesized import at, ref, resources

INVENTORY = Path(__file__).resolve().parent / "inventory"
SYMBOLIC = re.compile(r"\$\{(?!(?:each|count|var|local|data|self)\.)([a-z0-9_/]+)\.([^}]+)\}")


# Environments that have an inventory; one without gets every invariant test (policy, references,
# valid values, checkov) and fails only test_every_environment_has_an_inventory, which says so.
WITH_INVENTORY = tuple(env for env in ENVIRONMENTS if (INVENTORY / f"{env}.yaml").is_file())


def test_every_environment_has_an_inventory() -> None:
    missing = [env for env in ENVIRONMENTS if env not in WITH_INVENTORY]
    assert not missing, "\n".join(
        f"environment {env!r} has no inventory (tests/infra/inventory/{env}.yaml): write it with "
        f"`.venv/bin/python -m tests.infra.write_inventory {env}`, review it and commit it"
        for env in missing
    )


def load_inventory(env: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((INVENTORY / f"{env}.yaml").read_text(encoding="utf-8"))
    return data


def resolve(value: Any, stack: dict[str, Any]) -> Any:
    """Turns `${construct/path.attr}` in inventory values into the stack's real references."""
    if isinstance(value, str):
        return SYMBOLIC.sub(lambda m: ref(at(stack, m.group(1)), m.group(2)), value)
    if isinstance(value, dict):
        return {k: resolve(v, stack) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, stack) for v in value]
    return value


def mismatches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Differences where `expected` is not a subset of `actual` (lists compare item by item)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a mapping, got {actual!r}"]
        found = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{where}.{key}: missing")
            else:
                found += mismatches(value, actual[key], f"{where}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, got {actual!r}"]
        return [
            m
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for m in mismatches(e, a, f"{where}[{i}]")
        ]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


@pytest.mark.parametrize("env", WITH_INVENTORY)
def test_resource_counts(stacks: dict[str, dict[str, Any]], env: str) -> None:
    inventory = load_inventory(env)
    stack = stacks[env]
    assert {t: len(items) for t, items in stack["resource"].items()} == inventory["counts"]
    assert {t: len(items) for t, items in stack.get("data", {}).items()} == inventory["data_counts"]


@pytest.mark.parametrize("env", WITH_INVENTORY)
def test_key_values(stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    values = load_inventory(env)["values"]
    assert len(values) >= 20
    problems = []
    for path, expected in values.items():
        problems += mismatches(resolve(expected, stack), at(stack, path).body, path)
    assert problems == []


@pytest.mark.parametrize("env", WITH_INVENTORY)
def test_outputs(stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    expected = resolve(load_inventory(env)["outputs"], stack)
    assert {name: body["value"] for name, body in stack["output"].items()} == expected


def test_inventory_mismatches_are_reported() -> None:
    # The comparison itself must catch a wrong value, a missing key and a wrong list length.
    assert mismatches({"a": 1}, {"a": 1, "b": 2}) == []
    assert mismatches({"a": 1}, {"a": 2}) == [".a: expected 1, got 2"]
    assert mismatches({"c": 1}, {"a": 1}) == [".c: missing"]
    assert mismatches([1, 2], [1]) == [": expected [1, 2], got [1]"]


def test_every_resource_is_in_a_counted_type(stacks: dict[str, dict[str, Any]]) -> None:
    for env in WITH_INVENTORY:
        counted = set(load_inventory(env)["counts"])
        assert {r.type for r in resources(stacks[env])} == counted
