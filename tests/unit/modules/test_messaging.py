"""modules/messaging.py alone: topics kept in the region with keyed grants, a CMEK topic that
waits for its key, a dead-letter topic with its hold subscription, and subscriptions (push with
OIDC, pull) that retry, dead-letter and grant the Pub/Sub agent once per dead-letter topic."""

from __future__ import annotations

from typing import Any

import pytest
from cdktn import ITerraformDependable
from cdktn_provider_time.sleep import Sleep
from constructs import Construct

from modules.messaging import (
    AGENT_KEY,
    PUBLISHER,
    SUBSCRIBER,
    DeadLetterTopic,
    Delivery,
    Push,
    Subscription,
    Topic,
)
from tests.support.scratch_stack import synth

AGENT = "serviceAccount:service-1@gcp-sa-pubsub.iam.gserviceaccount.com"
PUSHER = "pusher@p-1.iam.gserviceaccount.com"
CONSUMER = "serviceAccount:consumer@p-1.iam.gserviceaccount.com"
KEY = "projects/p-1/locations/global/keyRings/r/cryptoKeys/k"
URL = "https://process.example.run.app"
DELIVERY = Delivery(
    ack_deadline_seconds=300,
    max_attempts=5,
    min_backoff_seconds=10,
    max_backoff_seconds=600,
    retention_days=7,
)


class Key:
    """The Key protocol: records who must use the key, returns a resource standing for it."""

    id = KEY

    def __init__(self, scope: Construct) -> None:
        self.scope = scope
        self.users: list[tuple[str, str]] = []

    def usable_by(self, key: str, member: str) -> list[ITerraformDependable]:
        self.users.append((key, member))
        return [Sleep(self.scope, f"usable_{key}", create_duration="1s")]


def build(scope: Construct) -> dict[str, Any]:
    common: dict[str, Any] = {
        "retention_days": 7,
        "storage_regions": ("europe-west4",),
        "labels": {"environment": "dev"},
    }
    key = Key(scope)
    events = Topic(scope, "events", name="events", kms_key=key, kms_agent=AGENT, **common)
    assert key.users == [(AGENT_KEY, AGENT)]
    dead = DeadLetterTopic(scope, "dead", name="events-dl", hold_name="events-dl-hold", **common)
    events.grant_subscribe("consumer", CONSUMER)
    with pytest.raises(ValueError, match="another member"):
        events.grant_subscribe("consumer", AGENT)
    subscriptions = {"push": "process", "pull": "inbox"}
    made = {
        kind: Subscription(
            scope,
            kind,
            name=name,
            topic=events,
            dead_letter=dead,  # shared: one publish grant to the agent
            delivery=DELIVERY,
            pubsub_agent=AGENT,
            labels=common["labels"],
            push=Push(endpoint=URL, audience=URL, service_account_email=PUSHER)
            if kind == "push"
            else None,
        )
        for kind, name in subscriptions.items()
    }
    made["pull"].grant_subscribe("reader", CONSUMER)
    return {
        "topic": events.id,
        "subscription": made["push"].name,
        "dead_letter_hold": dead.hold_subscription_name,
    }


def test_topics_subscriptions_dead_letters_and_agent_grants() -> None:
    out = synth(build)
    topics = {t.body["name"]: t for t in out.of_type("google_pubsub_topic")}
    assert set(topics) == {"events", "events-dl"}
    for topic in topics.values():
        assert topic.body["message_retention_duration"] == "604800s"
        assert topic.body["message_storage_policy"] == {
            "allowed_persistence_regions": ["europe-west4"]
        }
    events, dead = topics["events"], topics["events-dl"]
    assert events.body["kms_key_name"] == KEY
    assert events.body["depends_on"] == [out.one("time_sleep").address]
    assert "kms_key_name" not in dead.body and "depends_on" not in dead.body
    subs = {s.body["name"]: s.body for s in out.of_type("google_pubsub_subscription")}
    assert set(subs) == {"process", "inbox", "events-dl-hold"}
    for name in ("process", "inbox"):
        assert subs[name]["topic"] == out.ref(events, "id")
        assert subs[name]["ack_deadline_seconds"] == 300
        assert subs[name]["retry_policy"] == {"minimum_backoff": "10s", "maximum_backoff": "600s"}
        assert subs[name]["dead_letter_policy"] == {
            "dead_letter_topic": out.ref(dead, "id"),
            "max_delivery_attempts": 5,
        }
        assert subs[name]["expiration_policy"] == {"ttl": ""}
    assert subs["process"]["push_config"] == {
        "push_endpoint": URL,
        "oidc_token": {"service_account_email": PUSHER, "audience": URL},
    }
    assert "push_config" not in subs["inbox"]
    hold = subs["events-dl-hold"]
    assert hold["topic"] == out.ref(dead, "id")
    assert "push_config" not in hold  # a pull subscription keeps dead letters for replay
    assert "dead_letter_policy" not in hold

    sub_names = {
        s.body["name"]: out.ref(s, "name") for s in out.of_type("google_pubsub_subscription")
    }
    assert out.bindings() == {
        (out.ref(events, "name"), SUBSCRIBER, CONSUMER),
        (out.ref(dead, "name"), PUBLISHER, AGENT),
        (sub_names["process"], SUBSCRIBER, AGENT),
        (sub_names["inbox"], SUBSCRIBER, AGENT),
        (sub_names["inbox"], SUBSCRIBER, CONSUMER),
    }
    topic_grants = sorted(
        g.key.rsplit("_", 1)[0] for g in out.of_type("google_pubsub_topic_iam_member")
    )
    assert topic_grants == [f"dead_publish_{AGENT_KEY}", "events_subscribe_consumer"]
    assert out.outputs == {
        "topic": out.ref(events, "id"),
        "subscription": sub_names["process"],
        "dead_letter_hold": sub_names["events-dl-hold"],
    }
