"""A Cloud Storage bucket that can never be public: staging, function source, Terraform state.

Grants are keyed by names the caller chooses, so Terraform addresses never depend on call
order. A bucket with a default customer-managed key makes the key usable by the Cloud Storage
service agent and waits for that itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cdktn import ITerraformDependable, TerraformResourceLifecycle
from cdktn_provider_google.storage_bucket import StorageBucket, StorageBucketLifecycleRule
from cdktn_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from constructs import Construct

OBJECT_ADMIN = "roles/storage.objectAdmin"
OBJECT_VIEWER = "roles/storage.objectViewer"
AGENT_KEY = "storage-agent"


class Key(Protocol):
    """A customer-managed key (modules.encryption_keys.EncryptionKey has this shape)."""

    @property
    def id(self) -> str: ...

    def usable_by(self, key: str, member: str) -> list[ITerraformDependable]: ...


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
    noncurrent versions deleted after `noncurrent_days`, optional CMEK default key (`kms_key`,
    used by `kms_agent`, the project's Cloud Storage service agent), optional prevent_destroy."""

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
        kms_key: Key | None = None,
        kms_agent: str | None = None,
        protect: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        waits: list[ITerraformDependable] = []
        if kms_key is not None:
            if kms_agent is None:
                raise ValueError("kms_key needs kms_agent (the Cloud Storage service agent)")
            waits = kms_key.usable_by(AGENT_KEY, kms_agent)
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
            encryption={"default_kms_key_name": kms_key.id} if kms_key is not None else None,
            labels=labels,
            depends_on=waits or None,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if protect else None,
        )

    @property
    def name(self) -> str:
        return self.bucket.name

    def grant_object_admin(self, key: str, member: str) -> StorageBucketIamMember:
        return self._grant(f"object_admin_{key}", OBJECT_ADMIN, member)

    def grant_object_read(self, key: str, member: str) -> StorageBucketIamMember:
        """`key` names the grant (its Terraform address): choose it, never derive it from order."""
        return self._grant(f"object_read_{key}", OBJECT_VIEWER, member)

    def _grant(self, id_: str, role: str, member: str) -> StorageBucketIamMember:
        return StorageBucketIamMember(self, id_, bucket=self.bucket.name, role=role, member=member)
