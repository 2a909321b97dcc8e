"""The whole pipeline on one machine: the local servers, both functions, and the event wiring.

The functions are the deployed code (handlers/main.py's entry points under functions-framework),
configured only through their environment. The wiring mirrors Google Cloud:

    files -> gs://staging/incoming/ (GCS emulator) -> finalize CloudEvent -> ingest function
          -> STOW-RS -> Orthanc (the DICOM store)
    Orthanc cannot publish notifications, so for each stored instance we publish the message
    the Cloud Healthcare API would (imaging_cli.store_notifications) to Google's Pub/Sub
    emulator, whose push subscription POSTs it to the processor -> FHIR server (+ alerts topic).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests
from imaging_pipeline.telemetry import Event, Outcome

from imaging_cli.store_notifications import (
    StoredInstance,
    list_instances,
    publish_notifications,
    publisher_client,
)
from imaging_dev.servers._base import LocalServer
from imaging_dev.servers.fhir_server import FhirServer
from imaging_dev.servers.function_server import FunctionServer
from imaging_dev.servers.gcs_emulator import GcsEmulator
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.servers.pubsub_emulator import PubSubEmulator

PROJECT = "local-demo"
STORE = f"projects/{PROJECT}/locations/local/datasets/imaging/dicomStores/orthanc"
STAGING_BUCKET = "staging"
NOTIFICATION_TOPIC = f"projects/{PROJECT}/topics/dicom-notifications"
DEAD_LETTER_TOPIC = f"projects/{PROJECT}/topics/dicom-notifications-dead-letter"
PROCESSOR_SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/imaging-processor"
# The pull subscription that holds dead letters for inspection and replay (as in the stack).
DEAD_LETTER_SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/imaging-processor-dead-letter"
ALERTS_TOPIC = f"projects/{PROJECT}/topics/imaging-critical-alerts"
FINALIZED = "google.cloud.storage.object.v1.finalized"
PUSH_ACK_DEADLINE_S = 120
DEFAULT_SETTINGS: Mapping[str, Any] = {"analyzer": "local"}
# Processor log outcomes that end an event; "retry" means Pub/Sub will deliver it again.
FINAL_OUTCOMES = frozenset({Outcome.PROCESSED, Outcome.SKIPPED, Outcome.IGNORED, Outcome.FAILED})


@dataclass(frozen=True)
class StagedResult:
    object_name: str
    outcome: str  # the ingest function's: processed, failed, ignored, gone
    reason: str | None
    sop_instance_uid: str | None


@dataclass
class InstanceResult:
    instance: StoredInstance
    source: str = ""  # the staged file it came from
    outcome: str = "pending"
    reason: str | None = None
    priority: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None


class LocalPipeline:
    """`with LocalPipeline() as p: p.stage(files); p.notify(); p.wait_for_results()`."""

    def __init__(
        self,
        settings: Mapping[str, Any] = DEFAULT_SETTINGS,
        environment: str = "demo",
        processor_env: Mapping[str, str] | None = None,
        *,
        review_app: bool = False,
    ) -> None:
        self.settings = dict(settings)
        self.environment = environment
        self.processor_env_overrides = dict(processor_env or {})  # e.g. to break a dependency
        self._stack = ExitStack()
        self.orthanc = OrthancServer()
        self.fhir = FhirServer()
        self.pubsub = PubSubEmulator()
        self.gcs = GcsEmulator(project=PROJECT)
        self.ingest_function: FunctionServer | None = None
        self.processor: FunctionServer | None = None
        self.with_review_app = review_app
        self.review_app: FunctionServer | None = None
        self.staged: list[StagedResult] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self.processor is not None:
            return self  # already running (start() then `with pipeline:` is fine)
        try:
            self._start_all([self.orthanc, self.fhir, self.pubsub, self.gcs])
            self.ingest_function = FunctionServer("ingest_dicom_object", self._ingest_env())
            self.processor = FunctionServer("process_dicom_instance", self._processor_env())
            self._start_all([self.ingest_function, self.processor])
            self.gcs.client().create_bucket(STAGING_BUCKET)
            self.pubsub.create_topic(ALERTS_TOPIC)
            self.pubsub.create_topic(DEAD_LETTER_TOPIC)  # must exist, or Pub/Sub keeps retrying
            self._create_dead_letter_hold()
            self.pubsub.create_push_subscription(
                PROCESSOR_SUBSCRIPTION,
                NOTIFICATION_TOPIC,
                self.processor.url,
                dead_letter_topic=DEAD_LETTER_TOPIC,
                max_delivery_attempts=5,
                # The push timeout; production sets it to the processor's timeout. A slow
                # machine must not turn slow answers into redeliveries.
                ack_deadline_seconds=PUSH_ACK_DEADLINE_S,
            )
            if self.with_review_app:
                self.review_app = FunctionServer("review_app", self._review_env())
                self._start_all([self.review_app])
        except BaseException:
            self.stop()
            raise
        return self

    def _create_dead_letter_hold(self) -> None:
        from imaging_pipeline.adapters.dead_letters import subscriber_client

        subscriber_client(self.pubsub.host).create_subscription(
            request={
                "name": DEAD_LETTER_SUBSCRIPTION,
                "topic": DEAD_LETTER_TOPIC,
                "ack_deadline_seconds": 60,
            }
        )

    def _start_all(self, servers: list[LocalServer]) -> None:
        """Starts independent servers side by side; each is stopped by stop(), even if another
        failed to start."""
        for server in servers:
            self._stack.callback(server.stop)
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            for future in [pool.submit(server.start) for server in servers]:
                future.result()

    def stop(self) -> None:
        """Stops functions first, then servers (reverse start order); safe to call twice."""
        self._stack.close()
        self.ingest_function = self.processor = self.review_app = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _common_env(self) -> dict[str, str]:
        return {
            "DICOMWEB_URL": self.orthanc.dicomweb_url,
            "DICOM_STORE": STORE,
            "ENVIRONMENT": self.environment,
            "LOG_LEVEL": "INFO",
        }

    def _ingest_env(self) -> dict[str, str]:
        return {
            **self._common_env(),
            "STAGING_BUCKET": STAGING_BUCKET,
            "STORAGE_EMULATOR_HOST": self.gcs.url,
        }

    def _processor_env(self) -> dict[str, str]:
        return {
            **self._common_env(),
            "FHIR_BASE_URL": self.fhir.base_url,
            "ALERTS_TOPIC": ALERTS_TOPIC,
            "PIPELINE_SETTINGS": json.dumps(self.settings),
            "PUBSUB_EMULATOR_HOST": self.pubsub.host,
            **self.processor_env_overrides,
        }

    def _review_env(self) -> dict[str, str]:
        assert self.processor is not None
        return {
            "FHIR_BASE_URL": self.fhir.base_url,
            "DICOMWEB_URL": self.orthanc.dicomweb_url,
            "ENVIRONMENT": self.environment,
            "LOG_LEVEL": "INFO",
            "AUTH_MODE": "local",  # the banner says so on every page
            "EVENTS_TOPIC": NOTIFICATION_TOPIC,
            "DEAD_LETTER_SUBSCRIPTION": DEAD_LETTER_SUBSCRIPTION,
            "PUBSUB_EMULATOR_HOST": self.pubsub.host,
            "OUTCOME_LOG": str(self.processor.log_path),
        }

    # --- the flow ----------------------------------------------------------------------------

    def stage(self, files: Iterable[Path], *, workers: int = 4) -> list[StagedResult]:
        """Uploads each file to incoming/ and delivers its finalize event to the ingest function."""
        assert self.ingest_function is not None, "start() first"
        function = self.ingest_function
        bucket = self.gcs.client().bucket(STAGING_BUCKET)

        def stage_one(index_and_path: tuple[int, Path]) -> None:
            index, path = index_and_path
            blob = bucket.blob(f"incoming/{path.name}")
            blob.upload_from_filename(str(path), content_type="application/dicom")
            response = function.post_cloud_event(
                FINALIZED,
                f"//storage.googleapis.com/projects/_/buckets/{STAGING_BUCKET}",
                {
                    "bucket": STAGING_BUCKET,
                    "name": blob.name,
                    "generation": str(blob.generation),
                    "metageneration": "1",
                    "contentType": blob.content_type,
                    "size": str(blob.size),
                },
                event_id=f"demo-ingest-{index}",
                subject=f"objects/{blob.name}",
            )
            # Eventarc redelivers on an error status; one redelivery is enough locally.
            if response.status_code >= 500:
                function.post_cloud_event(
                    FINALIZED,
                    f"//storage.googleapis.com/projects/_/buckets/{STAGING_BUCKET}",
                    {
                        "bucket": STAGING_BUCKET,
                        "name": blob.name,
                        "generation": str(blob.generation),
                        "metageneration": "1",
                    },
                    event_id=f"demo-ingest-{index}",
                    subject=f"objects/{blob.name}",
                )

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(stage_one, enumerate(files)))
        self.staged = self._staged_results()
        return self.staged

    def _staged_results(self) -> list[StagedResult]:
        assert self.ingest_function is not None
        results: dict[str, StagedResult] = {}
        for entry in self.ingest_function.json_logs():
            if entry.get("event") == Event.INGEST and entry.get("outcome") != Outcome.GONE:
                name = str(entry.get("object", ""))
                results[name] = StagedResult(
                    name,
                    str(entry.get("outcome")),
                    entry.get("reason"),
                    entry.get("sop_instance_uid"),
                )
        return sorted(results.values(), key=lambda r: r.object_name)

    def notify(self) -> list[StoredInstance]:
        """Publishes the store's notification for every instance Orthanc holds."""
        instances = list(list_instances(requests.Session(), self.orthanc.dicomweb_url))
        summary = publish_notifications(
            instances,
            STORE,
            NOTIFICATION_TOPIC,
            publisher=publisher_client(emulator_host=self.pubsub.host),
        )
        if summary.failed:
            raise RuntimeError(f"{summary.failed} notification(s) could not be published")
        return instances

    def structured_reports(self) -> list[StoredInstance]:
        """The SRs (TID 1500) the processor stored back into Orthanc, one per analysis."""
        stored = list_instances(requests.Session(), self.orthanc.dicomweb_url)
        return [i for i in stored if i.modality == "SR"]

    def wait_for_results(
        self,
        instances: list[StoredInstance],
        timeout: float = 120.0,
        on_progress: Callable[[int], None] = lambda _: None,
    ) -> list[InstanceResult]:
        """Polls the processor's structured logs until every instance has a final outcome;
        `on_progress` gets the number of finished instances after each poll."""
        assert self.processor is not None
        sources = {
            s.sop_instance_uid: s.object_name.removeprefix("incoming/")
            for s in self.staged
            if s.sop_instance_uid
        }
        results = {
            i.sop_instance_uid: InstanceResult(i, sources.get(i.sop_instance_uid, ""))
            for i in instances
        }
        deadline = time.monotonic() + timeout
        stop = threading.Event()
        while True:
            for entry in self.processor.json_logs():
                result = results.get(str(entry.get("instance_uid", "")))
                if not str(entry.get("event", "")).startswith("instance_") or result is None:
                    continue
                if entry.get("outcome") in FINAL_OUTCOMES or result.outcome == "pending":
                    result.outcome = str(entry.get("outcome"))
                    result.reason = entry.get("reason")
                    result.priority = entry.get("priority")
                    result.findings = list(entry.get("findings") or [])
                    result.report = entry.get("report")
            for message in self.pubsub.published(DEAD_LETTER_TOPIC):
                # Pub/Sub gave up after max_delivery_attempts: final, and a failure.
                result = results.get(message.data.decode().rsplit("/", 1)[-1])
                if result is not None and result.outcome not in FINAL_OUTCOMES:
                    result.reason = f"dead-lettered after {result.outcome}: {result.reason}"
                    result.outcome = "failed"
            finished = sum(r.outcome in FINAL_OUTCOMES for r in results.values())
            on_progress(finished)
            if finished == len(results):
                break
            if time.monotonic() > deadline:
                break
            stop.wait(0.2)
        return sorted(
            results.values(), key=lambda r: (r.source or "~", r.instance.sop_instance_uid)
        )
