"""Dead-letter replay (imaging_pipeline.adapters.dead_letters, `imaging replay-dead-letters`)
against Google's Pub/Sub emulator, through the standard google-cloud-pubsub clients only."""

from __future__ import annotations

from typing import Any

import pytest
from imaging_pipeline.adapters import dead_letters

from imaging_cli.commands.replay_dead_letters import resource_names
from imaging_cli.main import main

pytestmark = pytest.mark.integration
PROJECT, PREFIX = "imaging-pipeline-dev", "imaging"  # environments/dev.yaml
DLQ_TOPIC = f"projects/{PROJECT}/topics/{PREFIX}-dicom-events-dead-letter"
WATCH = f"projects/{PROJECT}/subscriptions/watch-events"
STORE = "projects/p/locations/l/datasets/d/dicomStores/s"


def _path(n: int) -> str:
    return f"{STORE}/dicomWeb/studies/1.2.{n}/series/1.2.{n}.1/instances/1.2.{n}.1.1"


@pytest.fixture
def wired(pubsub_emulator: Any) -> tuple[Any, Any, str, str]:
    """The dev environment's topics and dead-letter subscription, holding three dead letters
    (data and attributes as Pub/Sub dead-letters them), and a watcher on the events topic."""
    subscription, topic = resource_names(PROJECT, PREFIX)
    publisher = dead_letters.publisher_client()
    subscriber = dead_letters.subscriber_client()
    for name in (topic, DLQ_TOPIC):
        pubsub_emulator.create_topic(name)  # (the fixture deletes what it created)
    subscriber.create_subscription(
        request={"name": subscription, "topic": DLQ_TOPIC, "ack_deadline_seconds": 60}
    )
    subscriber.create_subscription(request={"name": WATCH, "topic": topic})
    for n in range(3):
        publisher.publish(
            DLQ_TOPIC,
            _path(n).encode(),
            action="StoreInstances",
            CloudPubSubDeadLetterSourceDeliveryCount="5",
            CloudPubSubDeadLetterSourceSubscription="imaging-process-dicom-events",
        ).result(timeout=10)
    return subscriber, publisher, subscription, topic


def _drain(subscriber: Any, subscription: str) -> list[Any]:
    received = []
    for _ in range(3):
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": 50}, timeout=5
        )
        if not response.received_messages:
            break
        received.extend(response.received_messages)
        subscriber.acknowledge(
            request={
                "subscription": subscription,
                "ack_ids": [r.ack_id for r in response.received_messages],
            }
        )
    return received


def test_listing_does_not_consume(wired: tuple[Any, Any, str, str]) -> None:
    subscriber, _, subscription, _ = wired
    first = dead_letters.list_dead_letters(subscriber, subscription)
    again = dead_letters.list_dead_letters(subscriber, subscription)
    assert sorted(d.instance_path for d in first) == [_path(n) for n in range(3)]
    assert {d.message_id for d in again} == {d.message_id for d in first}
    assert all(d.attempts == 5 for d in first)


def test_cli_dry_run_then_limit_then_the_rest(
    wired: tuple[Any, Any, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    subscriber, _, subscription, _ = wired
    assert main(["replay-dead-letters", "dev", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would_replay\t") == 3
    assert len(dead_letters.list_dead_letters(subscriber, subscription)) == 3
    assert _drain(subscriber, WATCH) == []

    assert main(["replay-dead-letters", "dev", "--limit", "2"]) == 0
    assert capsys.readouterr().out.count("replayed\t") == 2
    assert len(dead_letters.list_dead_letters(subscriber, subscription)) == 1
    republished = _drain(subscriber, WATCH)
    assert len(republished) == 2
    for received in republished:
        # The original event again: same data, the store's attributes, no dead-letter ones.
        assert dict(received.message.attributes) == {"action": "StoreInstances"}
        assert received.message.data.decode() in {_path(n) for n in range(3)}

    assert main(["replay-dead-letters", "dev"]) == 0
    assert dead_letters.list_dead_letters(subscriber, subscription) == []
    assert len(_drain(subscriber, WATCH)) == 1


def test_selected_only_and_failed_publish_keeps_the_dead_letter(
    wired: tuple[Any, Any, str, str],
) -> None:
    subscriber, publisher, subscription, topic = wired
    letters = dead_letters.list_dead_letters(subscriber, subscription)
    chosen = letters[1].message_id
    report = dead_letters.replay(subscriber, publisher, subscription, topic, only=[chosen])
    assert [d.message_id for d in report.replayed] == [chosen]
    left = dead_letters.list_dead_letters(subscriber, subscription)
    assert chosen not in {d.message_id for d in left} and len(left) == 2

    missing = f"projects/{PROJECT}/topics/does-not-exist"
    failed = dead_letters.replay(subscriber, publisher, subscription, missing)
    assert failed.replayed == [] and len(failed.failed) == 2 and not failed.ok
    assert len(dead_letters.list_dead_letters(subscriber, subscription)) == 2


def test_cli_configuration_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay-dead-letters", "no-such-env"]) == 2
    assert "unknown environment" in capsys.readouterr().err
