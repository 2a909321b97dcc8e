"""Pub/Sub topics and the processor's push subscription with retries and a dead-letter topic."""

from __future__ import annotations

from cdktn_provider_google.pubsub_subscription import PubsubSubscription
from cdktn_provider_google.pubsub_subscription_iam_member import PubsubSubscriptionIamMember
from cdktn_provider_google.pubsub_topic import PubsubTopic
from cdktn_provider_google.pubsub_topic_iam_member import PubsubTopicIamMember
from constructs import Construct

PUBLISHER = "roles/pubsub.publisher"
SUBSCRIBER = "roles/pubsub.subscriber"


def _seconds(days: int) -> str:
    return f"{days * 86400}s"


class Topic(Construct):
    """A topic that keeps messages for `retention_days`, optionally encrypted with a CMEK key."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        retention_days: int,
        labels: dict[str, str],
        kms_key: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.topic = PubsubTopic(
            self,
            "topic",
            name=name,
            message_retention_duration=_seconds(retention_days),
            kms_key_name=kms_key,
            labels=labels,
        )
        self._grants = 0

    @property
    def name(self) -> str:
        return self.topic.name

    @property
    def id(self) -> str:
        """Full resource name `projects/P/topics/T` (what clients and notifications take)."""
        return self.topic.id

    def grant_publish(self, member: str) -> PubsubTopicIamMember:
        return self._grant(PUBLISHER, member)

    def grant_subscribe(self, member: str) -> PubsubTopicIamMember:
        return self._grant(SUBSCRIBER, member)

    def _grant(self, role: str, member: str) -> PubsubTopicIamMember:
        self._grants += 1
        return PubsubTopicIamMember(
            self,
            f"grant_{self._grants}",
            topic=self.topic.name,
            role=role,
            member=member,
        )


class PushSubscription(Construct):
    """Pushes a topic's messages to an authenticated HTTPS endpoint.

    Pub/Sub signs each push with an OIDC token of `push_service_account` for `audience`; a
    failed delivery is retried with exponential backoff and, after `max_delivery_attempts`,
    moved to the dead-letter topic, where a pull subscription keeps it for inspection and
    replay (a topic without subscriptions would drop it).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        topic: Topic,
        dead_letter: Topic,
        endpoint: str,
        audience: str,
        push_service_account: str,
        ack_deadline_seconds: int,
        max_delivery_attempts: int,
        minimum_backoff_seconds: int,
        maximum_backoff_seconds: int,
        retention_days: int,
        pubsub_agent: str,
        labels: dict[str, str],
        message_filter: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.subscription = PubsubSubscription(
            self,
            "push",
            name=name,
            topic=topic.id,
            # Messages that do not match are acknowledged by Pub/Sub and never pushed.
            filter=message_filter or None,
            ack_deadline_seconds=ack_deadline_seconds,
            message_retention_duration=_seconds(retention_days),
            push_config={
                "push_endpoint": endpoint,
                "oidc_token": {
                    "service_account_email": push_service_account,
                    "audience": audience,
                },
            },
            retry_policy={
                "minimum_backoff": f"{minimum_backoff_seconds}s",
                "maximum_backoff": f"{maximum_backoff_seconds}s",
            },
            dead_letter_policy={
                "dead_letter_topic": dead_letter.id,
                "max_delivery_attempts": max_delivery_attempts,
            },
            # Never expire: an idle week must not delete the pipeline's only subscription.
            expiration_policy={"ttl": ""},
            labels=labels,
        )
        self.dead_letter_hold = PubsubSubscription(
            self,
            "dead_letter_hold",
            name=f"{name}-dead-letter",
            topic=dead_letter.id,
            ack_deadline_seconds=60,
            message_retention_duration=_seconds(retention_days),
            expiration_policy={"ttl": ""},
            labels=labels,
        )
        # Dead-lettering acts as the Pub/Sub service agent: it must publish to the dead-letter
        # topic and acknowledge (subscribe on) the source subscription.
        dead_letter.grant_publish(pubsub_agent)
        PubsubSubscriptionIamMember(
            self,
            "agent_subscriber",
            subscription=self.subscription.name,
            role=SUBSCRIBER,
            member=pubsub_agent,
        )

    @property
    def name(self) -> str:
        return self.subscription.name

    @property
    def dead_letter_subscription_name(self) -> str:
        return self.dead_letter_hold.name
