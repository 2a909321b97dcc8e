"""Reference integrity: every `${...}` reference and depends_on entry in the synthesized JSON
names a declared resource, data source, local or variable, and an attribute that type has."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import modules  # noqa: F401  (lazy provider loading before any provider import)
from tests.infra.conftest import ENVIRONMENTS
from tests.infra.synthesized import provider_module

EXPRESSION = re.compile(r"\$\{(.*?)\}")
REFERENCE = re.compile(
    r"(?<![\w.])(?:(data)\.([a-z0-9_]+)\.([\w-]+)|(var|local)\.([\w-]+)|(google_[a-z0-9_]+)\.([\w-]+))"
    r"(?:\.([a-z_][a-z0-9_]*))?"
)


def _strings(node: Any, skip_comments: bool = True) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if skip_comments and key == "//":
                continue
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def references(stack: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(kind, address, attribute) of every reference: kind is resource, data, var or local."""
    found = []
    for text in _strings({k: v for k, v in stack.items() if k != "terraform"}):
        for expression in EXPRESSION.findall(text):
            for m in REFERENCE.finditer(expression):
                if m.group(1):
                    found.append(("data", f"{m.group(2)}.{m.group(3)}", m.group(8)))
                elif m.group(4):
                    found.append((m.group(4), m.group(5), None))
                else:
                    found.append(("resource", f"{m.group(6)}.{m.group(7)}", m.group(8)))
    return found


def declared(stack: dict[str, Any]) -> dict[str, set[str]]:
    return {
        "resource": {f"{t}.{k}" for t, items in stack.get("resource", {}).items() for k in items},
        "data": {f"{t}.{k}" for t, items in stack.get("data", {}).items() for k in items},
        "var": set(stack.get("variable", {})),
        "local": set(stack.get("locals", {})),
    }


@cache
def attributes(type_: str, data: bool = False) -> frozenset[str]:
    """Attribute names the provider's class for `type_` exposes (arguments and outputs)."""
    if data:
        module = importlib.import_module(f"cdktn_provider_google.data_{type_}")
    else:
        module = importlib.import_module(provider_module(type_))
    cls = next(
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if getattr(c, "TF_RESOURCE_TYPE", None) == type_
    )
    return frozenset(n for n, _ in inspect.getmembers(cls, lambda m: isinstance(m, property)))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_reference_resolves(stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    refs = references(stack)
    assert len(refs) > 50, "expected the stack to wire resources together"
    known = declared(stack)
    unresolved = sorted(
        {f"{kind}:{address}" for kind, address, _ in refs if address not in known[kind]}
    )
    assert unresolved == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_referenced_attribute_exists(stacks: dict[str, dict[str, Any]], env: str) -> None:
    missing, checked = [], 0
    for kind, address, attribute in references(stacks[env]):
        if attribute is None or kind not in ("resource", "data"):
            continue
        checked += 1
        if attribute not in attributes(address.split(".")[0], data=kind == "data"):
            missing.append(f"{address}.{attribute}")
    assert checked > 50
    assert missing == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_depends_on_names_declared_resources(stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    known = declared(stack)
    entries = [
        dep
        for kind in ("resource", "data")
        for items in stack.get(kind, {}).values()
        for body in items.values()
        for dep in body.get("depends_on", [])
    ]
    assert entries, "resources should wait for the project's APIs"
    bad = sorted(
        {
            d
            for d in entries
            if d.removeprefix("data.") not in known["data" if d.startswith("data.") else "resource"]
        }
    )
    assert bad == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_asset_paths_exist(stacks: dict[str, dict[str, Any]], synth_dir: Path, env: str) -> None:
    objects = stacks[env]["resource"]["google_storage_bucket_object"].values()
    for obj in objects:
        assert (synth_dir / "stacks" / env / obj["source"]).is_file()


def test_the_checker_catches_a_dangling_reference(stacks: dict[str, dict[str, Any]]) -> None:
    broken = {**stacks["dev"], "output": {"x": {"value": "${google_pubsub_topic.nope.name}"}}}
    known = declared(broken)
    assert ("resource", "google_pubsub_topic.nope", "name") in references(broken)
    assert "google_pubsub_topic.nope" not in known["resource"]
    assert "made_up" not in attributes("google_pubsub_topic")
    assert {"name", "id"} <= attributes("google_pubsub_topic")


def dependency_graph(stack: dict[str, Any]) -> dict[str, set[str]]:
    """address -> addresses it waits for (its references and its depends_on)."""
    graph: dict[str, set[str]] = {}
    for type_, items in stack.get("resource", {}).items():
        for key, body in items.items():
            edges = {
                address
                for kind, address, _ in references({"resource": {"x": {"y": body}}})
                if kind == "resource"
            }
            edges |= {d for d in body.get("depends_on", []) if not d.startswith("data.")}
            graph[f"{type_}.{key}"] = edges
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_resource_waits_for_every_api(stacks: dict[str, dict[str, Any]], env: str) -> None:
    """A fresh project has no APIs enabled: nothing may be created before all of them are."""
    graph = dependency_graph(stacks[env])
    apis = {a for a in graph if a.startswith("google_project_service.")}
    assert apis == {"google_project_service.services"}  # one resource, for_each over the APIs
    early = sorted(
        a
        for a in graph
        if not a.startswith("google_project_service.") and apis - reachable(graph, a)
    )
    assert early == []


def test_cmek_resources_wait_for_their_key_grant(stacks: dict[str, dict[str, Any]]) -> None:
    graph = dependency_graph(stacks["prod"])
    grants = {a for a in graph if a.startswith("google_kms_crypto_key_iam_member.")}
    assert len(grants) == 3
    for address in graph:
        if address.split(".")[0] in (
            "google_healthcare_dataset",
            "google_pubsub_topic",
            "google_storage_bucket",
        ):
            assert reachable(graph, address) & grants, address
