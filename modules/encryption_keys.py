"""Customer-managed encryption keys (Cloud KMS): one key ring, one rotating key per service."""

from __future__ import annotations

from cdktn import TerraformResourceLifecycle
from cdktn_provider_google.kms_crypto_key import KmsCryptoKey
from cdktn_provider_google.kms_crypto_key_iam_member import KmsCryptoKeyIamMember
from cdktn_provider_google.kms_key_ring import KmsKeyRing
from constructs import Construct

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
# Checkov checks that only pass with customer-managed keys: expected to fail, and only these,
# in environments with `security.cmek: false` (dev, staging hold no real PHI).
CHECKOV_CMEK_CHECKS = {
    "CKV_GCP_83": "Pub/Sub topics encrypted with a customer-managed key",
}


class EncryptionKeys(Construct):
    """A key ring in the pipeline's region with a separate key per consuming service, so a
    compromised or disabled key affects one service only."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        location: str,
        purposes: tuple[str, ...],
        rotation_days: int,
        labels: dict[str, str],
    ) -> None:
        super().__init__(scope, id_)
        # Key rings and keys cannot be deleted in KMS; destroying them in Terraform only orphans
        # key material that still encrypts data, so they are always protected.
        protect = TerraformResourceLifecycle(prevent_destroy=True)
        self.key_ring = KmsKeyRing(self, "ring", name=name, location=location, lifecycle=protect)
        self.keys: dict[str, KmsCryptoKey] = {
            purpose: KmsCryptoKey(
                self,
                f"key_{purpose}",
                name=f"{name}-{purpose}",
                key_ring=self.key_ring.id,
                purpose="ENCRYPT_DECRYPT",
                rotation_period=f"{rotation_days * 86400}s",
                labels=labels,
                lifecycle=protect,
            )
            for purpose in purposes
        }

    def key_id(self, purpose: str) -> str:
        return self.keys[purpose].id

    def grant_encrypt_decrypt(self, purpose: str, member: str) -> KmsCryptoKeyIamMember:
        """Lets `member` (usually a service agent) use the key of `purpose`."""
        return KmsCryptoKeyIamMember(
            self,
            f"encrypter_{purpose}",
            crypto_key_id=self.keys[purpose].id,
            role=ENCRYPTER_DECRYPTER,
            member=member,
        )
