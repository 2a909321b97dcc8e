"""Synthesize one module alone in a scratch stack, in this process (the per-module tests).

A team that forks one module takes its test file and this helper: no environment file, no other
module, only the inputs the module declares (plain strings where the pipeline passes references).
The properties a test wants to check are exported as Terraform outputs, so the test reads the
references they resolve to (`${type.key.attribute}`) from the synthesized JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cdktn import TerraformOutput, TerraformStack, Testing
from constructs import Construct

import modules  # noqa: F401  (first: the lazy provider must be installed before jsii starts)
from tests.infra.synthesized import TARGET_FIELDS, Resource, of_type, ref, resources


@dataclass(frozen=True)
class Synthesized:
    """The synthesized `cdk.tf.json` of a scratch stack, with readers."""

    json: dict[str, Any]

    def of_type(self, type_: str) -> list[Resource]:
        return of_type(self.json, type_)

    def one(self, type_: str) -> Resource:
        found = self.of_type(type_)
        assert len(found) == 1, f"{len(found)} {type_} resources"
        return found[0]

    def types(self) -> list[str]:
        return sorted(r.type for r in resources(self.json))

    def data(self, type_: str) -> Resource:
        [found] = [r for r in resources(self.json, "data") if r.type == type_]
        return found

    def bindings(self) -> set[tuple[str, str, str]]:
        """(target, role, member) of every IAM member resource; target is a reference or an id."""
        found = set()
        for r in resources(self.json):
            if r.type.endswith("_iam_member"):
                target = next(str(r.body[f]) for f in TARGET_FIELDS if f in r.body)
                found.add((target, str(r.body["role"]), str(r.body["member"])))
        return found

    @property
    def outputs(self) -> dict[str, str]:
        return {k: str(v["value"]) for k, v in self.json.get("output", {}).items()}

    def ref(self, resource: Resource, attribute: str) -> str:
        return ref(resource, attribute)


def synth(build: Callable[[Construct], Mapping[str, Any]]) -> Synthesized:
    """Synthesize a stack holding only what `build` adds; what it returns becomes outputs."""
    app = Testing.app()
    stack = TerraformStack(app, "scratch")
    for name, value in build(stack).items():
        TerraformOutput(stack, name, value=value)
    return Synthesized(json.loads(Testing.synth(stack)))
