"""modules/private_bucket.py alone: never public, versioned, expiring, keyed grants, and a CMEK
bucket that waits until its key is usable by the Cloud Storage agent."""

from __future__ import annotations

from typing import Any

import pytest
from cdktn import ITerraformDependable
from cdktn_provider_time.sleep import Sleep
from constructs import Construct

from modules.private_bucket import (
    AGENT_KEY,
    OBJECT_ADMIN,
    OBJECT_VIEWER,
    ExpireRule,
    PrivateBucket,
)
from tests.support.scratch_stack import synth

WRITER = "serviceAccount:writer@p-1.iam.gserviceaccount.com"
READER = "serviceAccount:reader@p-1.iam.gserviceaccount.com"
AGENT = "serviceAccount:service-1@gs-project-accounts.iam.gserviceaccount.com"
KEY = "projects/p-1/locations/eu/keyRings/r/cryptoKeys/k"


class Key:
    """The Key protocol: records who must use the key, returns a resource standing for it."""

    id = KEY

    def __init__(self, scope: Construct) -> None:
        self.scope = scope
        self.users: list[tuple[str, str]] = []

    def usable_by(self, key: str, member: str) -> list[ITerraformDependable]:
        self.users.append((key, member))
        return [Sleep(self.scope, f"usable_{key}", create_duration="1s")]


def _bucket(scope: Construct, **kms: Any) -> PrivateBucket:
    return PrivateBucket(
        scope,
        "staging",
        name="p-1-staging",
        location="EU",
        labels={"environment": "dev"},
        noncurrent_days=7,
        expire=(ExpireRule("processed/", 30),),
        protect=True,
        **kms,
    )


def build(scope: Construct) -> dict[str, Any]:
    key = Key(scope)
    bucket = _bucket(scope, kms_key=key, kms_agent=AGENT)
    assert key.users == [(AGENT_KEY, AGENT)]
    bucket.grant_object_admin("writer", WRITER)
    bucket.grant_object_read("reader", READER)
    return {"name": bucket.name}


def test_private_versioned_expiring_bucket_with_keyed_grants() -> None:
    out = synth(build)
    bucket = out.one("google_storage_bucket")
    body = bucket.body
    assert body["public_access_prevention"] == "enforced"
    assert body["uniform_bucket_level_access"] is True
    assert body["versioning"] == {"enabled": True}
    assert body["lifecycle"]["prevent_destroy"] is True
    conditions = [rule["condition"] for rule in body["lifecycle_rule"]]
    assert {"age": 30, "matches_prefix": ["processed/"], "with_state": "LIVE"} in conditions
    assert {"days_since_noncurrent_time": 7, "with_state": "ARCHIVED"} in conditions
    name = out.ref(bucket, "name")
    assert out.bindings() == {(name, OBJECT_ADMIN, WRITER), (name, OBJECT_VIEWER, READER)}
    grants = out.of_type("google_storage_bucket_iam_member")
    assert sorted(g.key.rsplit("_", 1)[0] for g in grants) == [
        "staging_object_admin_writer",
        "staging_object_read_reader",
    ]
    assert out.outputs == {"name": name}


def test_encrypted_bucket_waits_until_its_key_is_usable() -> None:
    out = synth(build)
    body = out.one("google_storage_bucket").body
    assert body["encryption"] == {"default_kms_key_name": KEY}
    assert body["depends_on"] == [out.one("time_sleep").address]
    with pytest.raises(ValueError, match="kms_agent"):
        synth(lambda scope: {"b": _bucket(scope, kms_key=Key(scope)).name})


def test_unencrypted_bucket_waits_for_nothing() -> None:
    body = synth(lambda scope: {"b": _bucket(scope).name}).one("google_storage_bucket").body
    assert "encryption" not in body and "depends_on" not in body
