"""modules/private_bucket.py alone: never public, versioned, expiring, grants per member."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules.private_bucket import OBJECT_ADMIN, OBJECT_VIEWER, ExpireRule, PrivateBucket
from tests.support.scratch_stack import synth

WRITER = "serviceAccount:writer@p-1.iam.gserviceaccount.com"
READER = "serviceAccount:reader@p-1.iam.gserviceaccount.com"
KEY = "projects/p-1/locations/eu/keyRings/r/cryptoKeys/k"


def build(scope: Construct) -> dict[str, Any]:
    bucket = PrivateBucket(
        scope,
        "staging",
        name="p-1-staging",
        location="EU",
        labels={"environment": "dev"},
        noncurrent_days=7,
        expire=(ExpireRule("processed/", 30),),
        kms_key=KEY,
    )
    bucket.grant_object_admin(WRITER)
    bucket.grant_object_read(READER)
    return {"name": bucket.name}


def test_private_versioned_expiring_bucket_with_grants() -> None:
    out = synth(build)
    bucket = out.one("google_storage_bucket")
    body = bucket.body
    assert body["public_access_prevention"] == "enforced"
    assert body["uniform_bucket_level_access"] is True
    assert body["versioning"] == {"enabled": True}
    assert body["encryption"] == {"default_kms_key_name": KEY}
    conditions = [rule["condition"] for rule in body["lifecycle_rule"]]
    assert {"age": 30, "matches_prefix": ["processed/"], "with_state": "LIVE"} in conditions
    assert {"days_since_noncurrent_time": 7, "with_state": "ARCHIVED"} in conditions
    name = out.ref(bucket, "name")
    assert out.bindings() == {(name, OBJECT_ADMIN, WRITER), (name, OBJECT_VIEWER, READER)}
    assert out.outputs == {"name": name}
