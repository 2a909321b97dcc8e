"""Customer-managed encryption keys (Cloud KMS): one key ring, one rotating key per service.

A resource encrypted with a key asks the key to be usable by its service agent
(`EncryptionKey.usable_by`): that grants the agent encrypt/decrypt once and returns what the
resource must wait for, the grant and an IAM propagation wait. So the encrypted resource owns
its coupling to its key (as AWS CDK's grants also grant the key), and the stack wires nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from cdktn import ITerraformDependable, TerraformResourceLifecycle
from cdktn_provider_google.kms_crypto_key import KmsCryptoKey
from cdktn_provider_google.kms_crypto_key_iam_member import KmsCryptoKeyIamMember
from cdktn_provider_google.kms_key_ring import KmsKeyRing
from cdktn_provider_time.sleep import Sleep
from constructs import Construct

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
# IAM changes usually apply within a minute but may take several; a first use of the key right
# after its grant can be refused. Waited once, when the grant is created.
PROPAGATION = "120s"
# Checkov checks that only pass with customer-managed keys: expected to fail, and only these,
# in environments with `security.cmek: false` (dev, staging hold no real PHI).
CHECKOV_CMEK_CHECKS = {
    "CKV_GCP_83": "Pub/Sub topics encrypted with a customer-managed key",
}


class EncryptionKey(Construct):
    """One rotating key; `usable_by(key, member)` is what an encrypted resource waits for."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        key_ring: str,
        rotation_days: int,
        labels: dict[str, str],
    ) -> None:
        super().__init__(scope, id_)
        # Keys cannot be deleted in KMS; destroying them in Terraform only orphans key material
        # that still encrypts data, so they are always protected.
        self.key = KmsCryptoKey(
            self,
            "key",
            name=name,
            key_ring=key_ring,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=f"{rotation_days * 86400}s",
            labels=labels,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True),
        )
        # key -> (member as given, grant): jsii hands back a fresh token for `grant.member`.
        self._grants: dict[str, tuple[str, KmsCryptoKeyIamMember]] = {}
        self._waits: dict[str, Sleep] = {}

    @property
    def id(self) -> str:
        return self.key.id

    def grant_encrypt_decrypt(self, key: str, member: str) -> KmsCryptoKeyIamMember:
        """Lets `member` use the key. `key` names the grant (its Terraform address), so
        addresses never depend on call order; asking twice with the same key and member returns
        the same grant."""
        existing = self._grants.get(key)
        if existing is not None:
            if existing[0] != member:
                raise ValueError(f"grant key {key!r} is already used for another member")
            return existing[1]
        grant = KmsCryptoKeyIamMember(
            self,
            f"encrypter_{key}",
            crypto_key_id=self.key.id,
            role=ENCRYPTER_DECRYPTER,
            member=member,
        )
        self._grants[key] = (member, grant)
        return grant

    def usable_by(self, key: str, member: str) -> list[ITerraformDependable]:
        """Grants `member` (a service agent) use of the key and returns what a resource
        encrypted with it must depend on: the grant, then the IAM propagation wait."""
        grant = self.grant_encrypt_decrypt(key, member)
        wait = self._waits.get(key)
        if wait is None:
            wait = Sleep(
                self, f"propagation_{key}", create_duration=PROPAGATION, depends_on=[grant]
            )
            self._waits[key] = wait
        return [grant, wait]


class EncryptionKeys(Construct):
    """Key rings with a separate key per purpose, so a compromised or disabled key affects one
    service only. `purposes` maps each purpose to its key's location: the region for
    regional resources (a dataset's or bucket's key must be in its location), `global` for
    Pub/Sub, whose topics are global (Pub/Sub recommends global keys)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        purposes: Mapping[str, str],
        rotation_days: int,
        labels: dict[str, str],
    ) -> None:
        super().__init__(scope, id_)
        protect = TerraformResourceLifecycle(prevent_destroy=True)
        self.key_rings: dict[str, KmsKeyRing] = {}
        for location in sorted(set(purposes.values())):
            self.key_rings[location] = KmsKeyRing(
                self,
                f"ring_{location.replace('-', '_')}",
                name=name if location != "global" else f"{name}-global",
                location=location,
                lifecycle=protect,
            )
        self.keys: dict[str, EncryptionKey] = {
            purpose: EncryptionKey(
                self,
                f"key_{purpose}",
                name=f"{name}-{purpose}",
                key_ring=self.key_rings[location].id,
                rotation_days=rotation_days,
                labels=labels,
            )
            for purpose, location in purposes.items()
        }

    def key(self, purpose: str) -> EncryptionKey:
        return self.keys[purpose]
