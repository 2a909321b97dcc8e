"""A Cloud Storage bucket that can never be public: the staging and function-source buckets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktn_provider_google.storage_bucket import StorageBucket, StorageBucketLifecycleRule
from cdktn_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from constructs import Construct

OBJECT_ADMIN = "roles/storage.objectAdmin"
OBJECT_VIEWER = "roles/storage.objectViewer"
# Checkov checks these buckets fail on purpose (tests/infra/test_checkov.py applies them).
CHECKOV_SKIPS = {
    "CKV_GCP_62": "Access logging: Data Access audit logs for storage.googleapis.com (see "
    "stacks/pipeline_stack.py AUDITED_SERVICES) record every object read and write "
    "with the caller's identity, which Google recommends over legacy usage logs; a "
    "usage-log bucket would itself need a log bucket.",
}


@dataclass(frozen=True)
class ExpireRule:
    """Delete live objects under `prefix` once they are `days` old."""

    prefix: str
    days: int


class PrivateBucket(Construct):
    """Uniform bucket-level access, public access prevention enforced, object versioning,
    noncurrent versions deleted after `noncurrent_days`, optional CMEK default key."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        location: str,
        labels: dict[str, str],
        noncurrent_days: int,
        expire: Sequence[ExpireRule] = (),
        kms_key: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        rules = [
            StorageBucketLifecycleRule(
                action={"type": "Delete"},
                condition={"age": rule.days, "matches_prefix": [rule.prefix], "with_state": "LIVE"},
            )
            for rule in expire
        ]
        rules.append(
            StorageBucketLifecycleRule(
                action={"type": "Delete"},
                condition={"days_since_noncurrent_time": noncurrent_days, "with_state": "ARCHIVED"},
            )
        )
        self.bucket = StorageBucket(
            self,
            "bucket",
            name=name,
            location=location,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            lifecycle_rule=rules,
            encryption={"default_kms_key_name": kms_key} if kms_key else None,
            labels=labels,
        )
        self._grants = 0

    @property
    def name(self) -> str:
        return self.bucket.name

    def grant_object_admin(self, member: str) -> StorageBucketIamMember:
        return self._grant(OBJECT_ADMIN, member)

    def grant_object_read(self, member: str) -> StorageBucketIamMember:
        return self._grant(OBJECT_VIEWER, member)

    def _grant(self, role: str, member: str) -> StorageBucketIamMember:
        self._grants += 1
        return StorageBucketIamMember(
            self,
            f"grant_{self._grants}",
            bucket=self.bucket.name,
            role=role,
            member=member,
        )
