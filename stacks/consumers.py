"""Declared consumers of the critical-findings and FHIR-changes topics (per environment).

A topic without a subscription delivers nothing: each of these topics gets one subscription,
either a pull inbox (the review app, the CLI or an on-call tool pull from it; `subscribers`
may) or an HTTPS push to an endpoint the environment names, with the same retry, retention and
dead-letter discipline as the processor's subscription.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cdktn_provider_google.service_account import ServiceAccount
from constructs import Construct

from modules.messaging import DeadLetterTopic, Delivery, Push, Subscription, Topic
from stacks.config import Consumers as ConsumersConfig

NAMES = {"critical_findings": "critical-findings", "fhir_changes": "fhir-changes"}


class Consumers(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        prefix: str,
        topics: Mapping[str, Topic],
        config: ConsumersConfig,
        delivery: Mapping[str, Any],
        make_dead_letter_topic: Callable[[str, str, str], DeadLetterTopic],
        pubsub_agent: str,
        labels: dict[str, str],
    ) -> None:
        super().__init__(scope, id_)
        self.subscriptions: dict[str, Subscription] = {}
        self.dead_letters: dict[str, DeadLetterTopic] = {}
        pusher: ServiceAccount | None = None
        for key, topic in topics.items():
            consumer = getattr(config, key)
            name = NAMES[key]
            kind = "inbox" if consumer.type == "pull" else "push"
            dead_letter = make_dead_letter_topic(
                f"{key}_dead_letter", f"{name}-dead-letter", f"{name}-{kind}-dead-letter"
            )
            push = None
            if consumer.type == "push":
                if pusher is None:
                    pusher = ServiceAccount(
                        self,
                        "push_identity",
                        account_id=f"{prefix}-notify",
                        display_name="Signs Pub/Sub pushes to the declared consumers",
                    )
                push = Push(
                    endpoint=consumer.push_endpoint,
                    audience=consumer.push_endpoint,
                    service_account_email=pusher.email,
                )
            subscription = Subscription(
                self,
                key,
                name=f"{prefix}-{name}-{kind}",
                topic=topic,
                dead_letter=dead_letter,
                delivery=Delivery(ack_deadline_seconds=consumer.ack_deadline_seconds, **delivery),
                pubsub_agent=pubsub_agent,
                labels=labels,
                push=push,
            )
            for member in consumer.subscribers:
                # Keyed by the member itself: reordering the list keeps every address.
                subscription.grant_subscribe(_key(member), member)
            self.subscriptions[key] = subscription
            self.dead_letters[key] = dead_letter

    @property
    def dead_letter_subscription_names(self) -> list[str]:
        return [d.hold_subscription_name for d in self.dead_letters.values()]

    @property
    def outputs(self) -> dict[str, str]:
        return {f"{key}_subscription": s.name for key, s in self.subscriptions.items()}


def _key(member: str) -> str:
    """A grant key from an IAM member: `group:a.b@example.org` -> `group-a-b-example-org`."""
    return "".join(c if c.isalnum() else "-" for c in member.lower()).strip("-")
