"""modules/messaging.py alone: topics with grants; the push subscription with OIDC, retries,
a dead-letter topic, a hold subscription and the Pub/Sub agent's grants."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules.messaging import PUBLISHER, SUBSCRIBER, PushSubscription, Topic
from tests.support.scratch_stack import synth

AGENT = "serviceAccount:service-1@gcp-sa-pubsub.iam.gserviceaccount.com"
PUSHER = "pusher@p-1.iam.gserviceaccount.com"
CONSUMER = "serviceAccount:consumer@p-1.iam.gserviceaccount.com"


def build(scope: Construct) -> dict[str, Any]:
    labels = {"environment": "dev"}
    events = Topic(scope, "events", name="events", retention_days=7, labels=labels)
    dead = Topic(scope, "dead", name="events-dead-letter", retention_days=7, labels=labels)
    events.grant_subscribe(CONSUMER)
    push = PushSubscription(
        scope,
        "push",
        name="process",
        topic=events,
        dead_letter=dead,
        endpoint="https://process.example.run.app",
        audience="https://process.example.run.app",
        push_service_account=PUSHER,
        ack_deadline_seconds=300,
        max_delivery_attempts=5,
        minimum_backoff_seconds=10,
        maximum_backoff_seconds=600,
        retention_days=7,
        pubsub_agent=AGENT,
        labels=labels,
    )
    return {
        "topic": events.id,
        "subscription": push.name,
        "dead_letter_subscription": push.dead_letter_subscription_name,
    }


def test_push_subscription_with_dead_letters_and_agent_grants() -> None:
    out = synth(build)
    topics = {t.body["name"]: t for t in out.of_type("google_pubsub_topic")}
    assert set(topics) == {"events", "events-dead-letter"}
    assert all(t.body["message_retention_duration"] == "604800s" for t in topics.values())
    subs = {s.body["name"]: s for s in out.of_type("google_pubsub_subscription")}
    assert set(subs) == {"process", "process-dead-letter"}
    push = subs["process"].body
    assert push["topic"] == out.ref(topics["events"], "id")
    assert push["push_config"]["oidc_token"] == {
        "service_account_email": PUSHER,
        "audience": "https://process.example.run.app",
    }
    assert push["retry_policy"] == {"minimum_backoff": "10s", "maximum_backoff": "600s"}
    assert push["dead_letter_policy"] == {
        "dead_letter_topic": out.ref(topics["events-dead-letter"], "id"),
        "max_delivery_attempts": 5,
    }
    assert push["expiration_policy"] == {"ttl": ""}
    hold = subs["process-dead-letter"].body
    assert hold["topic"] == out.ref(topics["events-dead-letter"], "id")
    assert "push_config" not in hold  # a pull subscription keeps dead letters for replay
    assert out.bindings() == {
        (out.ref(topics["events"], "name"), SUBSCRIBER, CONSUMER),
        (out.ref(topics["events-dead-letter"], "name"), PUBLISHER, AGENT),
        (out.ref(subs["process"], "name"), SUBSCRIBER, AGENT),
    }
    assert out.outputs == {
        "topic": out.ref(topics["events"], "id"),
        "subscription": out.ref(subs["process"], "name"),
        "dead_letter_subscription": out.ref(subs["process-dead-letter"], "name"),
    }
