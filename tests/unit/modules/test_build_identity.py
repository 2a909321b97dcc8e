"""modules/build_identity.py alone: one service account with the build roles, nothing else."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules.build_identity import BUILD_ROLES, BuildIdentity
from tests.support.scratch_stack import synth


def build(scope: Construct) -> dict[str, Any]:
    identity = BuildIdentity(scope, "build", project_id="p-1", account_id="builder")
    return {"member": identity.member, "resource_name": identity.resource_name}


def test_resources_grants_and_outputs() -> None:
    out = synth(build)
    account = out.one("google_service_account")
    assert account.body["account_id"] == "builder"
    assert out.types() == sorted(["google_service_account"] + ["google_project_iam_member"] * 2)
    member = out.ref(account, "member")
    assert out.bindings() == {("p-1", role, member) for role in BUILD_ROLES}
    assert out.outputs == {"member": member, "resource_name": out.ref(account, "id")}
