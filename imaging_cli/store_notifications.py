"""List a store's instances with QIDO-RS and publish the notification the store would have sent.

The Cloud Healthcare API publishes, for each stored instance, a Pub/Sub message whose data is
the instance path `projects/P/locations/L/datasets/D/dicomStores/S/dicomWeb/studies/X/series/Y/
instances/Z`, with attributes such as `action`, `storeName` and `modality`. Republishing exactly
that lets the processor (and its autoscaling, retries and dead-lettering) handle existing
archives and notifications lost under error rates, with no second code path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import requests
from imaging_pipeline.events import instance_path

from imaging_cli.qido_listing import GOOGLE_CAPS, QidoCaps, QidoLister

STUDY_INSTANCE_UID = "0020000D"
SERIES_INSTANCE_UID = "0020000E"
SOP_INSTANCE_UID = "00080018"
SOP_CLASS_UID = "00080016"
MODALITY = "00080060"
STORE_INSTANCES_ACTION = "StoreInstances"


@dataclass(frozen=True)
class StoredInstance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str = ""
    modality: str = ""

    def path(self, store: str) -> str:
        return instance_path(store, self.study_uid, self.series_uid, self.sop_instance_uid)


def _first(item: dict[str, object], tag: str) -> str:
    element = item.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return str(values[0]) if isinstance(values, list) and values else ""


def list_instances(
    session: requests.Session,
    dicomweb_url: str,
    *,
    since: date | None = None,
    until: date | None = None,
    on_study: Callable[[str], None] = lambda _: None,
    on_note: Callable[[str], None] = lambda _: None,
    caps: QidoCaps = GOOGLE_CAPS,
) -> Iterator[StoredInstance]:
    """Every instance of every study whose StudyDate is in [since, until], study by study,
    streamed page by page and partitioned under the store's QIDO-RS caps (qido_listing).

    Filtering happens on the study level because StudyDate is a study attribute every store
    indexes; without a range all studies are listed, including those with no StudyDate.
    """
    lister = QidoLister(session, dicomweb_url, caps, on_note=on_note)
    fields = ",".join((SERIES_INSTANCE_UID, SOP_INSTANCE_UID, SOP_CLASS_UID, MODALITY))
    for study in lister.studies(since, until):
        study_uid = _first(study, STUDY_INSTANCE_UID)
        if not study_uid:
            continue
        on_study(study_uid)
        for item in lister.instances(study_uid, fields):
            yield StoredInstance(
                study_uid,
                _first(item, SERIES_INSTANCE_UID),
                _first(item, SOP_INSTANCE_UID),
                _first(item, SOP_CLASS_UID),
                _first(item, MODALITY),
            )


def notification(instance: StoredInstance, store: str) -> tuple[bytes, dict[str, str]]:
    """The message data and attributes the store publishes for a newly stored instance."""
    # The attributes the store's notification_configs messages carry (the subscription filter
    # and the processor's early skip read `modality`).
    attributes = {
        "action": STORE_INSTANCES_ACTION,
        "storeName": store,
        "studyInstanceUID": instance.study_uid,
        "seriesInstanceUID": instance.series_uid,
        "sopInstanceUID": instance.sop_instance_uid,
    }
    if instance.modality:
        attributes["modality"] = instance.modality
    return instance.path(store).encode(), attributes


@dataclass
class PublishSummary:
    published: int = 0
    failed: int = 0


def publisher_client(*, emulator_host: str | None = None, max_outstanding: int = 1000) -> Any:
    """A Pub/Sub publisher; with `emulator_host`, a plaintext channel to that local server
    (like PUBSUB_EMULATOR_HOST, but without changing the process environment).

    Flow control blocks the caller while `max_outstanding` messages await the server, so
    listing a store with millions of instances never gets far ahead of publishing.
    """
    from google.cloud import pubsub_v1
    from google.cloud.pubsub_v1 import types

    options = types.PublisherOptions(
        flow_control=types.PublishFlowControl(
            message_limit=max_outstanding, limit_exceeded_behavior=types.LimitExceededBehavior.BLOCK
        )
    )
    if emulator_host is None:
        return pubsub_v1.PublisherClient(publisher_options=options)
    import grpc
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    transport = PublisherGrpcTransport(channel=grpc.insecure_channel(emulator_host))
    return pubsub_v1.PublisherClient(publisher_options=options, transport=transport)


def publish_notifications(
    instances: Iterable[StoredInstance],
    store: str,
    topic: str,
    *,
    on_done: Callable[[bool], None] = lambda _: None,
    publisher: Any = None,
    timeout_s: float = 300.0,
) -> PublishSummary:
    """Publishes one message per instance (batched by the client) and waits for all of them.

    The default publisher honours PUBSUB_EMULATOR_HOST. No future is kept per message. The
    publisher is stopped when done, a given one too (stopping flushes its batches): pass a new
    one to every call.
    """
    publisher = publisher if publisher is not None else publisher_client()
    summary = PublishSummary()
    settled = threading.Condition()
    submitted = 0

    def settle(future: Any) -> None:
        ok = future.exception() is None  # the client already retried transient errors
        with settled:
            if ok:
                summary.published += 1
            else:
                summary.failed += 1
            settled.notify_all()
        on_done(ok)

    try:
        for instance in instances:
            data, attributes = notification(instance, store)
            publisher.publish(topic, data, **attributes).add_done_callback(settle)
            submitted += 1
        with settled:
            if not settled.wait_for(
                lambda: summary.published + summary.failed >= submitted, timeout=timeout_s
            ):
                summary.failed = submitted - summary.published
    finally:
        publisher.stop()
    return summary
