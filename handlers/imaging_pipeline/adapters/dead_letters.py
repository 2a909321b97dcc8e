"""Dead letters: list them, and replay them to the events topic (review app and CLI share this).

Works with the standard `google.cloud.pubsub_v1` clients, so against Google Cloud, Google's
Pub/Sub emulator or any server of the same gRPC protocol (`PUBSUB_EMULATOR_HOST`).

Replay is at-least-once and loses nothing: a dead letter is acknowledged only after its
republish was confirmed by the server; a failed publish leaves it in the subscription (its lease
is released) and is reported. Messages the caller did not select, and every message in a dry
run, are leased while the replay walks the subscription (so one pull does not return them again)
and released at the end, untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

# Attributes Pub/Sub adds when it dead-letters a message; not part of the original event.
DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetterSource"
DELIVERY_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"
PULL_BATCH = 100
PULL_TIMEOUT_S = 5.0
PUBLISH_TIMEOUT_S = 30.0
# Two pulls in a row that bring nothing new: the subscription has been walked.
EMPTY_PULLS_TO_STOP = 2
LEASE_SECONDS = 120


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    instance_path: str  # the message data: the DICOM store's instance path
    attributes: dict[str, str]
    publish_time: str

    @property
    def attempts(self) -> int | None:
        """How often Pub/Sub tried to deliver it before giving up (when it says)."""
        value = self.attributes.get(DELIVERY_COUNT_ATTRIBUTE, "")
        return int(value) if value.isdigit() else None

    @property
    def instance_uid(self) -> str:
        return self.instance_path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def original_attributes(self) -> dict[str, str]:
        return {
            k: v
            for k, v in self.attributes.items()
            if not k.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)
        }


@dataclass
class ReplayReport:
    replayed: list[DeadLetter] = field(default_factory=list)
    would_replay: list[DeadLetter] = field(default_factory=list)  # dry run
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def subscriber_client(emulator_host: str | None = None) -> Any:
    """A SubscriberClient. It honours PUBSUB_EMULATOR_HOST by itself; `emulator_host` points
    it at a local server without changing the process environment."""
    from google.cloud import pubsub_v1

    if emulator_host is None:
        return pubsub_v1.SubscriberClient()
    import grpc
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    channel = grpc.insecure_channel(emulator_host)
    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))


def publisher_client(emulator_host: str | None = None) -> Any:
    from google.cloud import pubsub_v1

    if emulator_host is None:
        return pubsub_v1.PublisherClient()
    import grpc
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    channel = grpc.insecure_channel(emulator_host)
    return pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=channel))


def _dead_letter(received: Any) -> DeadLetter:
    message = received.message
    publish_time = message.publish_time
    return DeadLetter(
        message_id=str(message.message_id),
        instance_path=bytes(message.data).decode("utf-8", errors="replace"),
        attributes=dict(message.attributes),
        publish_time=publish_time.isoformat() if publish_time else "",
    )


def _pull(subscriber: Any, subscription: str, max_messages: int) -> list[Any]:
    from google.api_core import exceptions as api_exceptions

    try:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": max_messages},
            timeout=PULL_TIMEOUT_S,
        )
    except api_exceptions.DeadlineExceeded:
        return []  # the real service may hold an empty pull until its deadline
    return list(response.received_messages)


def _walk(
    subscriber: Any, subscription: str, limit: int | None
) -> Iterator[tuple[DeadLetter, str]]:
    """Every dead letter once, with its ack id; the caller keeps (or acks) what it was given.

    Messages pulled but not handed out (over the limit, or left when the caller stops early)
    are released before this returns, so none stays leased behind the caller's back."""
    seen: set[str] = set()
    empty = 0
    while empty < EMPTY_PULLS_TO_STOP and (limit is None or len(seen) < limit):
        batch = _pull(subscriber, subscription, PULL_BATCH)
        # A message seen before came back (its lease ran out): release it again right away.
        _release(
            subscriber, subscription, [r.ack_id for r in batch if r.message.message_id in seen]
        )
        fresh = [r for r in batch if r.message.message_id not in seen]
        if not fresh:
            empty += 1
            continue
        empty = 0
        pending = [r.ack_id for r in fresh]
        try:
            for received in fresh:
                if limit is not None and len(seen) >= limit:
                    break
                seen.add(received.message.message_id)
                pending.remove(received.ack_id)
                yield _dead_letter(received), received.ack_id
        finally:
            _release(subscriber, subscription, pending)


def _release(subscriber: Any, subscription: str, ack_ids: list[str]) -> None:
    """Give the messages back to the subscription now (ack deadline 0), untouched."""
    if ack_ids:
        subscriber.modify_ack_deadline(
            request={"subscription": subscription, "ack_ids": ack_ids, "ack_deadline_seconds": 0}
        )


def list_dead_letters(subscriber: Any, subscription: str, *, limit: int = 200) -> list[DeadLetter]:
    """Reads up to `limit` dead letters without consuming them."""
    held: list[str] = []
    letters: list[DeadLetter] = []
    try:
        for letter, ack_id in _walk(subscriber, subscription, limit):
            letters.append(letter)
            held.append(ack_id)
    finally:
        _release(subscriber, subscription, held)
    return letters


def replay(
    subscriber: Any,
    publisher: Any,
    subscription: str,
    topic: str,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    only: Collection[str] | None = None,
    on_message: Callable[[str, DeadLetter], None] = lambda _outcome, _letter: None,
) -> ReplayReport:
    """Republishes dead letters (all, or the message ids in `only`) to `topic`.

    Each is acknowledged only after the publish succeeded. `limit` caps how many messages are
    looked at; `on_message(outcome, letter)` reports progress ("replayed", "would_replay",
    "failed").
    """
    report = ReplayReport()
    held: list[str] = []
    wanted = set(only) if only is not None else None
    try:
        for letter, ack_id in _walk(subscriber, subscription, limit):
            if wanted is not None and letter.message_id not in wanted:
                held.append(ack_id)
                continue
            if dry_run:
                report.would_replay.append(letter)
                held.append(ack_id)
                on_message("would_replay", letter)
                continue
            try:
                future = publisher.publish(
                    topic, letter.instance_path.encode("utf-8"), **letter.original_attributes
                )
                future.result(timeout=PUBLISH_TIMEOUT_S)
            except Exception as exc:  # any publish failure: keep the dead letter
                held.append(ack_id)
                report.failed.append((letter, type(exc).__name__))
                on_message("failed", letter)
                continue
            subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [ack_id]})
            report.replayed.append(letter)
            on_message("replayed", letter)
            if wanted is not None and len(report.replayed) == len(wanted):
                break
    finally:
        _release(subscriber, subscription, held)
    return report
