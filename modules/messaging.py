"""Pub/Sub topics, dead-letter topics and subscriptions with retries and dead-lettering.

Grants are keyed by names the caller chooses (`topic.grant_publish("processor", member)`), so
Terraform addresses never depend on the order of calls (as Fabric's IAM maps). A topic
encrypted with a customer-managed key makes the key usable by the Pub/Sub service agent and
waits for that itself (`kms_key`, `kms_agent`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from cdktn import ITerraformDependable
from cdktn_provider_google.pubsub_subscription import PubsubSubscription
from cdktn_provider_google.pubsub_subscription_iam_member import PubsubSubscriptionIamMember
from cdktn_provider_google.pubsub_topic import PubsubTopic
from cdktn_provider_google.pubsub_topic_iam_member import PubsubTopicIamMember
from constructs import Construct

PUBLISHER = "roles/pubsub.publisher"
SUBSCRIBER = "roles/pubsub.subscriber"
AGENT_KEY = "pubsub-agent"  # grant key of the Pub/Sub service agent (dead-lettering, CMEK)


class Key(Protocol):
    """A customer-managed key (modules.encryption_keys.EncryptionKey has this shape)."""

    @property
    def id(self) -> str: ...

    def usable_by(self, key: str, member: str) -> list[ITerraformDependable]: ...


Grant = TypeVar("Grant", PubsubTopicIamMember, PubsubSubscriptionIamMember)


class _KeyedGrants(dict[str, tuple[str, object]]):
    """One grant per caller-chosen id; asking again with the same member returns it, another
    member is refused (id -> (member as given, grant): jsii hands back a fresh token for
    `grant.member`)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind  # what owns the grants, for the error message

    def get_or_make(
        self, owner: Construct, id_: str, member: str, make: Callable[[], Grant]
    ) -> Grant:
        existing = self.get(id_)
        if existing is not None:
            if existing[0] != member:
                raise ValueError(f"grant {id_!r} of {self.kind} {owner.node.id} has another member")
            return existing[1]  # type: ignore[return-value]
        grant = make()
        self[id_] = (member, grant)
        return grant


def _seconds(days: int) -> str:
    return f"{days * 86400}s"


class Topic(Construct):
    """A topic that keeps messages for `retention_days` and stores them only in
    `storage_regions`; with `kms_key`, encrypted by it once `kms_agent` may use it."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        retention_days: int,
        storage_regions: Sequence[str],
        labels: dict[str, str],
        kms_key: Key | None = None,
        kms_agent: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        waits: list[ITerraformDependable] = []
        if kms_key is not None:
            if kms_agent is None:
                raise ValueError("kms_key needs kms_agent (the Pub/Sub service agent)")
            waits = kms_key.usable_by(AGENT_KEY, kms_agent)
        self.topic = PubsubTopic(
            self,
            "topic",
            name=name,
            message_retention_duration=_seconds(retention_days),
            # Messages carry instance paths and UIDs: keep them in the environment's region.
            message_storage_policy={"allowed_persistence_regions": list(storage_regions)},
            kms_key_name=kms_key.id if kms_key is not None else None,
            labels=labels,
            depends_on=waits or None,
        )
        self._grants = _KeyedGrants("topic")

    @property
    def name(self) -> str:
        return self.topic.name

    @property
    def id(self) -> str:
        """Full resource name `projects/P/topics/T` (what clients and notifications take)."""
        return self.topic.id

    def grant_publish(self, key: str, member: str) -> PubsubTopicIamMember:
        return self._grant(f"publish_{key}", PUBLISHER, member)

    def grant_subscribe(self, key: str, member: str) -> PubsubTopicIamMember:
        return self._grant(f"subscribe_{key}", SUBSCRIBER, member)

    def _grant(self, id_: str, role: str, member: str) -> PubsubTopicIamMember:
        """Several subscriptions share one dead-letter grant to the service agent."""
        return self._grants.get_or_make(
            self,
            id_,
            member,
            lambda: PubsubTopicIamMember(
                self, id_, topic=self.topic.name, role=role, member=member
            ),
        )


class DeadLetterTopic(Topic):
    """A topic for messages a subscription gave up on, with a pull subscription (`hold_name`)
    that keeps them for inspection and replay: a topic without subscriptions would drop them."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        hold_name: str,
        retention_days: int,
        storage_regions: Sequence[str],
        labels: dict[str, str],
        kms_key: Key | None = None,
        kms_agent: str | None = None,
    ) -> None:
        super().__init__(
            scope,
            id_,
            name=name,
            retention_days=retention_days,
            storage_regions=storage_regions,
            labels=labels,
            kms_key=kms_key,
            kms_agent=kms_agent,
        )
        self.hold = PubsubSubscription(
            self,
            "hold",
            name=hold_name,
            topic=self.topic.id,
            ack_deadline_seconds=60,
            message_retention_duration=_seconds(retention_days),
            expiration_policy={"ttl": ""},
            labels=labels,
        )

    @property
    def hold_subscription_name(self) -> str:
        return self.hold.name

    @property
    def hold_subscription_id(self) -> str:
        """`projects/P/subscriptions/S`, what clients take."""
        return self.hold.id

    def grant_hold_consume(self, key: str, member: str) -> PubsubSubscriptionIamMember:
        """Pull, inspect and acknowledge dead letters (for replay); `key` names the grant."""
        return PubsubSubscriptionIamMember(
            self,
            f"hold_consumer_{key}",
            subscription=self.hold.name,
            role=SUBSCRIBER,
            member=member,
        )


@dataclass(frozen=True)
class Push:
    """Deliver by HTTPS POST, signed with an OIDC token of `service_account_email`."""

    endpoint: str
    audience: str
    service_account_email: str


@dataclass(frozen=True)
class Delivery:
    """Retries with exponential backoff, then the dead-letter topic after `max_attempts`."""

    ack_deadline_seconds: int
    max_attempts: int
    min_backoff_seconds: int
    max_backoff_seconds: int
    retention_days: int


class Subscription(Construct):
    """A subscription (pull, or push with `push`) that retries with backoff and, after
    `delivery.max_attempts`, moves a message to `dead_letter`.

    Dead-lettering acts as the Pub/Sub service agent (`pubsub_agent`): it must publish to the
    dead-letter topic and acknowledge (subscribe on) this subscription; both grants are made
    here, keyed, so several subscriptions sharing a dead-letter topic share one grant.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        topic: Topic,
        dead_letter: DeadLetterTopic,
        delivery: Delivery,
        pubsub_agent: str,
        labels: dict[str, str],
        push: Push | None = None,
        message_filter: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        push_config = None
        if push is not None:
            push_config = {
                "push_endpoint": push.endpoint,
                "oidc_token": {
                    "service_account_email": push.service_account_email,
                    "audience": push.audience,
                },
            }
        self.subscription = PubsubSubscription(
            self,
            "subscription",
            name=name,
            topic=topic.id,
            # Messages that do not match are acknowledged by Pub/Sub and never pushed.
            filter=message_filter or None,
            ack_deadline_seconds=delivery.ack_deadline_seconds,
            message_retention_duration=_seconds(delivery.retention_days),
            push_config=push_config,
            retry_policy={
                "minimum_backoff": f"{delivery.min_backoff_seconds}s",
                "maximum_backoff": f"{delivery.max_backoff_seconds}s",
            },
            dead_letter_policy={
                "dead_letter_topic": dead_letter.id,
                "max_delivery_attempts": delivery.max_attempts,
            },
            # Never expire: an idle week must not delete a subscription someone relies on.
            expiration_policy={"ttl": ""},
            labels=labels,
        )
        dead_letter.grant_publish(AGENT_KEY, pubsub_agent)
        self._grants = _KeyedGrants("subscription")
        self.grant_subscribe(AGENT_KEY, pubsub_agent)
        self.dead_letter = dead_letter

    @property
    def name(self) -> str:
        return self.subscription.name

    @property
    def id(self) -> str:
        return self.subscription.id

    def grant_subscribe(self, key: str, member: str) -> PubsubSubscriptionIamMember:
        """Lets `member` pull and acknowledge (the review app, an operator's group)."""
        id_ = f"subscribe_{key}"
        return self._grants.get_or_make(
            self,
            id_,
            member,
            lambda: PubsubSubscriptionIamMember(
                self, id_, subscription=self.subscription.name, role=SUBSCRIBER, member=member
            ),
        )
