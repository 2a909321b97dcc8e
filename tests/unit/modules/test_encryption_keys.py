"""modules/encryption_keys.py alone: a protected ring per location, a rotating protected key per
purpose, keyed grants, and `usable_by`: the grant, then a propagation wait on it."""

from __future__ import annotations

from typing import Any

import pytest
from constructs import Construct

from modules.encryption_keys import ENCRYPTER_DECRYPTER, PROPAGATION, EncryptionKeys
from tests.support.scratch_stack import synth

AGENT = "serviceAccount:agent@example.iam.gserviceaccount.com"
READER = "serviceAccount:reader@example.iam.gserviceaccount.com"


def build(scope: Construct) -> dict[str, Any]:
    keys = EncryptionKeys(
        scope,
        "keys",
        name="imaging-prod",
        purposes={"healthcare": "europe-west4", "pubsub": "global"},
        rotation_days=90,
        labels={"environment": "prod"},
    )
    pubsub = keys.key("pubsub")
    first = pubsub.usable_by("pubsub-agent", AGENT)
    assert pubsub.usable_by("pubsub-agent", AGENT) == first  # asked twice: one grant, one wait
    pubsub.grant_encrypt_decrypt("reader", READER)
    with pytest.raises(ValueError, match="another member"):
        pubsub.grant_encrypt_decrypt("reader", AGENT)
    return {"pubsub_key": pubsub.id}


def test_keys_rotate_are_protected_and_only_granted_where_asked() -> None:
    out = synth(build)
    rings = {r.body["location"]: r for r in out.of_type("google_kms_key_ring")}
    assert {loc: r.body["name"] for loc, r in rings.items()} == {
        "europe-west4": "imaging-prod",
        "global": "imaging-prod-global",
    }
    assert all(r.body["lifecycle"]["prevent_destroy"] is True for r in rings.values())
    keys = {k.body["name"]: k for k in out.of_type("google_kms_crypto_key")}
    assert set(keys) == {"imaging-prod-healthcare", "imaging-prod-pubsub"}
    for key, location in (("healthcare", "europe-west4"), ("pubsub", "global")):
        body = keys[f"imaging-prod-{key}"].body
        assert body["key_ring"] == out.ref(rings[location], "id")
        assert body["rotation_period"] == f"{90 * 86400}s"
        assert body["lifecycle"]["prevent_destroy"] is True
    pubsub_key = out.ref(keys["imaging-prod-pubsub"], "id")
    assert out.bindings() == {
        (pubsub_key, ENCRYPTER_DECRYPTER, AGENT),
        (pubsub_key, ENCRYPTER_DECRYPTER, READER),
    }
    assert out.outputs == {"pubsub_key": pubsub_key}


def test_usable_by_returns_the_grant_then_a_wait_on_it() -> None:
    out = synth(build)
    [grant] = [
        g for g in out.of_type("google_kms_crypto_key_iam_member") if g.body["member"] == AGENT
    ]
    wait = out.one("time_sleep")  # only usable_by waits; a plain grant does not
    assert wait.body["create_duration"] == PROPAGATION
    assert wait.body["depends_on"] == [grant.address]
    # Addresses follow the grant's key (and the hash of its path), never the call order.
    assert grant.key.rsplit("_", 1)[0] == "keys_key_pubsub_encrypter_pubsub-agent"
    assert wait.key.rsplit("_", 1)[0] == "keys_key_pubsub_propagation_pubsub-agent"
