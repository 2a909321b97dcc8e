"""modules/encryption_keys.py alone: one ring, a rotating protected key per purpose, grants."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules.encryption_keys import ENCRYPTER_DECRYPTER, EncryptionKeys
from tests.support.scratch_stack import synth

AGENT = "serviceAccount:agent@example.iam.gserviceaccount.com"


def build(scope: Construct) -> dict[str, Any]:
    keys = EncryptionKeys(
        scope,
        "keys",
        name="imaging-prod",
        location="europe-west4",
        purposes=("healthcare", "pubsub"),
        rotation_days=90,
        labels={"environment": "prod"},
    )
    keys.grant_encrypt_decrypt("pubsub", AGENT)
    return {"pubsub_key": keys.key_id("pubsub")}


def test_keys_rotate_are_protected_and_only_granted_where_asked() -> None:
    out = synth(build)
    ring = out.one("google_kms_key_ring")
    assert ring.body["lifecycle"]["prevent_destroy"] is True
    keys = {k.body["name"]: k for k in out.of_type("google_kms_crypto_key")}
    assert set(keys) == {"imaging-prod-healthcare", "imaging-prod-pubsub"}
    for key in keys.values():
        assert key.body["key_ring"] == out.ref(ring, "id")
        assert key.body["rotation_period"] == f"{90 * 86400}s"
        assert key.body["lifecycle"]["prevent_destroy"] is True
    pubsub_key = out.ref(keys["imaging-prod-pubsub"], "id")
    assert out.bindings() == {(pubsub_key, ENCRYPTER_DECRYPTER, AGENT)}
    assert out.outputs == {"pubsub_key": pubsub_key}
