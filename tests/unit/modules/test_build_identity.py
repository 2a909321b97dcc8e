"""modules/build_identity.py alone: the build service account, its project roles, read access to
Cloud Functions' own source bucket only, and `ready`: every grant, then a propagation wait."""

from __future__ import annotations

from typing import Any

import pytest
from cdktn_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from constructs import Construct

from modules.build_identity import BUILD_ROLES, PROPAGATION, SOURCE_READER, BuildIdentity
from tests.support.scratch_stack import synth


class SourceBucket:
    """The SourceBucket protocol: a read grant on a bucket named by a plain string."""

    def __init__(self, scope: Construct) -> None:
        self.scope = scope

    def grant_object_read(self, key: str, member: str) -> StorageBucketIamMember:
        return StorageBucketIamMember(
            self.scope, f"read_{key}", bucket="p-1-source", role=SOURCE_READER, member=member
        )


def _identity(scope: Construct) -> BuildIdentity:
    return BuildIdentity(
        scope,
        "build",
        project_id="p-1",
        project_number="123",
        region="europe-west4",
        account_id="builder",
    )


def build(scope: Construct) -> dict[str, Any]:
    identity = _identity(scope)
    identity.read_source("build", SourceBucket(scope))
    assert identity.ready is identity.ready  # one wait, however often it is asked for
    return {"member": identity.member, "resource_name": identity.resource_name}


def test_resources_grants_ready_and_outputs() -> None:
    out = synth(build)
    account = out.one("google_service_account")
    assert account.body["account_id"] == "builder"
    member = out.ref(account, "member")
    assert out.bindings() == {("p-1", role, member) for role in BUILD_ROLES} | {
        ("p-1", SOURCE_READER, member),
        ("p-1-source", SOURCE_READER, member),
    }
    [conditional] = [
        g for g in out.of_type("google_project_iam_member") if g.body["role"] == SOURCE_READER
    ]
    assert conditional.body["condition"]["expression"] == (
        'resource.name.startsWith("projects/_/buckets/gcf-v2-sources-123-europe-west4")'
    )
    wait = out.one("time_sleep")
    assert wait.body["create_duration"] == PROPAGATION
    grants = out.of_type("google_project_iam_member") + out.of_type(
        "google_storage_bucket_iam_member"
    )
    assert sorted(wait.body["depends_on"]) == sorted(g.address for g in grants)
    assert out.outputs == {"member": member, "resource_name": out.ref(account, "id")}


def test_a_grant_after_ready_would_miss_the_wait() -> None:
    def late(scope: Construct) -> dict[str, Any]:
        identity = _identity(scope)
        assert identity.ready is not None
        identity.read_source("build", SourceBucket(scope))
        return {}

    with pytest.raises(RuntimeError, match="after `ready`"):
        synth(late)
