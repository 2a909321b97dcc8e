"""Grant addresses come from keys the caller chooses, never from call order: the same grants
made in another order synthesize to the same Terraform addresses and bodies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.infra.conftest import ROOT

SCRIPT = r"""
import json, sys
sys.path.insert(0, "handlers")
import modules  # lazy provider loading
from cdktn import App, TerraformStack
from cdktn_provider_google.provider import GoogleProvider
from cdktn_provider_time.provider import TimeProvider
from modules.encryption_keys import EncryptionKeys
from modules.messaging import DeadLetterTopic, Delivery, Subscription, Topic
from modules.private_bucket import PrivateBucket

order = sys.argv[1]
outdir = sys.argv[2]
app = App(outdir=outdir)
stack = TerraformStack(app, "grants")
GoogleProvider(stack, "google", project="p")
TimeProvider(stack, "time")
keys = EncryptionKeys(stack, "cmek", name="k", purposes={"pubsub": "global", "storage": "r"},
                      rotation_days=90, labels={})
topic = Topic(stack, "topic", name="t", retention_days=1, storage_regions=["r"], labels={},
              kms_key=keys.key("pubsub"), kms_agent="serviceAccount:agent@x")
dead = DeadLetterTopic(stack, "dead", name="d", hold_name="h", retention_days=1,
                       storage_regions=["r"], labels={})
bucket = PrivateBucket(stack, "bucket", name="b", location="r", labels={}, noncurrent_days=1)
sub = Subscription(stack, "sub", name="s", topic=topic, dead_letter=dead,
                   delivery=Delivery(10, 5, 10, 60, 1), pubsub_agent="serviceAccount:agent@x",
                   labels={})
calls = [
    lambda: topic.grant_publish("processor", "serviceAccount:p@x"),
    lambda: topic.grant_subscribe("audit", "group:audit@x"),
    lambda: bucket.grant_object_read("build", "serviceAccount:b@x"),
    lambda: bucket.grant_object_admin("ingest", "serviceAccount:i@x"),
    lambda: sub.grant_subscribe("oncall", "group:oncall@x"),
    lambda: keys.key("storage").grant_encrypt_decrypt("storage-agent", "serviceAccount:s@x"),
]
for call in (calls if order == "forward" else list(reversed(calls))):
    call()
app.synth()
"""


def _synth(order: str, outdir: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, order, str(outdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stack: dict[str, Any] = json.loads((outdir / "stacks" / "grants" / "cdk.tf.json").read_text())
    return stack["resource"]


def test_reordered_grants_keep_their_addresses_and_bodies(tmp_path: Path) -> None:
    forward = _synth("forward", tmp_path / "forward")
    backward = _synth("backward", tmp_path / "backward")
    iam = {
        (type_, name)
        for type_, items in forward.items()
        if type_.endswith("_iam_member")
        for name in items
    }
    assert len(iam) == 9  # the six calls, the dead-letter grants and the key grant to the agent
    assert forward == backward


def test_asking_twice_for_the_same_grant_returns_it_and_a_clash_is_refused(
    tmp_path: Path,
) -> None:
    script = SCRIPT.replace(
        "app.synth()",
        "assert topic.grant_publish('processor', 'serviceAccount:p@x') is not None\n"
        "try:\n    topic.grant_publish('processor', 'serviceAccount:other@x')\n"
        "except ValueError as exc:\n    print('refused:', exc)\napp.synth()",
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "forward", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "refused: grant 'publish_processor' of topic topic has another member" in result.stdout
    stack = json.loads((tmp_path / "stacks" / "grants" / "cdk.tf.json").read_text())
    publishers = [
        b
        for b in stack["resource"]["google_pubsub_topic_iam_member"].values()
        if b["member"] == "serviceAccount:p@x"
    ]
    assert len(publishers) == 1
