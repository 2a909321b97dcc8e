"""Google's Pub/Sub emulator (`gcloud beta emulators pubsub start`) as a local server.

The unmodified `google.cloud.pubsub_v1` clients talk to it with `PUBSUB_EMULATOR_HOST=<.host>`;
it also serves the REST API on the same port (`publish_url`), which Orthanc's store-notification
hook uses. Push subscriptions, retry policies and dead-lettering behave as in Pub/Sub.

The thin layer here covers only what the emulator lacks: it does not say what was published, so
`create_topic` also attaches a recorder (a pull subscription) that `published()` drains, and
`reset()` deletes every topic and subscription between tests. Publish faults are produced the
way they happen in production (a topic that does not exist); push requests carry no OIDC token,
since nothing here can sign one (Cloud Run checks it in front of the function, not our code).
"""

from __future__ import annotations

import base64
import itertools
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from imaging_dev.servers._base import LOOPBACK, SubprocessServer, free_port

PROJECT = "local-project"
INSTALL_HINT = (
    "Google's Pub/Sub emulator is not installed: it is the Debian package "
    "google-cloud-cli-pubsub-emulator from Google Cloud's apt repository "
    "(https://cloud.google.com/sdk/docs/install#deb); scripts/bootstrap.sh installs it"
)


@dataclass(frozen=True)
class Message:
    """A message as a recorder received it."""

    topic: str
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: str


def emulator_installed(gcloud: str = "gcloud") -> bool:
    path = shutil.which(gcloud)
    if path is None:
        return False
    sdk = Path(path).resolve().parent.parent  # .../google-cloud-sdk/bin/gcloud
    return any(
        (root / "platform" / "pubsub-emulator").is_dir()
        for root in (sdk, sdk / "lib" / "google-cloud-sdk", Path("/usr/lib/google-cloud-sdk"))
    )


class PubSubEmulator(SubprocessServer):
    """`with PubSubEmulator() as ps: os.environ["PUBSUB_EMULATOR_HOST"] = ps.host`."""

    name = "pubsub"
    orphan_watch = True

    def __init__(
        self, workdir: Path | None = None, *, gcloud: str = "gcloud", startup_timeout: float = 180
    ) -> None:
        super().__init__(workdir)
        self.gcloud = gcloud
        self.startup_timeout = startup_timeout  # a JVM: slow on a busy machine
        self.port = 0
        self._session = requests.Session()
        self._lock = threading.Lock()
        self._recorders: dict[str, str] = {}  # topic -> recorder subscription
        self._received: dict[str, list[Message]] = {}
        self._ids = itertools.count(1)

    @property
    def host(self) -> str:
        """The value for PUBSUB_EMULATOR_HOST."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def publish_url(self, topic: str) -> str:
        """The REST URL that publishes to `topic` (a full topic name)."""
        return f"{self.url}/v1/{topic}:publish"

    def _start(self) -> None:
        if not emulator_installed(self.gcloud):
            raise FileNotFoundError(INSTALL_HINT)
        self.port = free_port()
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self._spawn(
            [
                self.gcloud,
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port={self.host}",
                f"--data-dir={self.workdir / 'data'}",
                "--quiet",
            ],
            env={"CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "CLOUDSDK_CONFIG": str(self.workdir)},
        )
        self._wait_ready(self._ready, self.startup_timeout)

    def _ready(self) -> bool:
        if "Server started" not in self.log_path.read_text(errors="replace"):
            return False
        return self._session.get(f"{self.url}/v1/projects/{PROJECT}/topics", timeout=2).ok

    def _stop(self) -> None:
        self._kill()
        self._session.close()

    # --- admin over REST -----------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._session.request(method, f"{self.url}/v1/{path}", json=body, timeout=10)
        if response.status_code == 409:  # already exists: what a re-run of a fixture wants
            return {}
        response.raise_for_status()
        return dict(response.json() or {})

    def create_topic(self, topic: str, *, record: bool = True) -> None:
        """Creates `topic` (idempotent); with `record`, `published(topic)` sees what comes after."""
        self._call("PUT", topic)
        if record:
            with self._lock:
                if topic in self._recorders:
                    return
                project = topic.split("/")[1]
                name = f"projects/{project}/subscriptions/recorder-{next(self._ids)}"
                self._recorders[topic] = name
                self._received[topic] = []
            self._call("PUT", name, {"topic": topic, "ackDeadlineSeconds": 60})

    def create_push_subscription(
        self,
        subscription: str,
        topic: str,
        endpoint: str,
        *,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        ack_deadline_seconds: int = 10,
        backoff_seconds: tuple[float, float] = (0.1, 2.0),
        message_filter: str | None = None,
    ) -> None:
        """A push subscription as the stack declares one (the topics are created if missing);
        `message_filter` is stored with the subscription, but the emulator does not apply it
        (it delivers every message): tests evaluate filters with tests/support/pubsub_filter.py.

        The retry policy's backoff is short by default so a test or the demo does not stall;
        production uses 10 s to 600 s.
        """
        self.create_topic(topic)
        body: dict[str, Any] = {
            "topic": topic,
            "pushConfig": {"pushEndpoint": endpoint},
            "ackDeadlineSeconds": ack_deadline_seconds,
            "retryPolicy": {
                "minimumBackoff": f"{backoff_seconds[0]}s",
                "maximumBackoff": f"{backoff_seconds[1]}s",
            },
        }
        if message_filter:
            body["filter"] = message_filter
        if dead_letter_topic:
            self.create_topic(dead_letter_topic)
            body["deadLetterPolicy"] = {
                "deadLetterTopic": dead_letter_topic,
                "maxDeliveryAttempts": max_delivery_attempts,
            }
        self._call("PUT", subscription, body)

    def reset(self) -> None:
        """Deletes every subscription and topic of the projects used so far; forgets messages."""
        projects = {t.split("/")[1] for t in self._recorders} | {PROJECT}
        for project in projects:
            subscriptions = self._call("GET", f"projects/{project}/subscriptions")
            for sub in subscriptions.get("subscriptions", []):
                self._call("DELETE", str(sub["name"]))
            topics = self._call("GET", f"projects/{project}/topics")
            for topic in topics.get("topics", []):
                self._call("DELETE", str(topic["name"]))
        with self._lock:
            self._recorders.clear()
            self._received.clear()

    # --- what was published --------------------------------------------------------------------

    def _drain(self, topic: str) -> None:
        subscription = self._recorders.get(topic)
        if subscription is None:
            raise KeyError(f"{topic} has no recorder: create it with create_topic() first")
        while True:
            body = {"maxMessages": 100, "returnImmediately": True}
            received = self._call("POST", f"{subscription}:pull", body).get("receivedMessages", [])
            if not received:
                return
            self._call(
                "POST",
                f"{subscription}:acknowledge",
                {"ackIds": [r["ackId"] for r in received]},
            )
            with self._lock:
                self._received[topic].extend(
                    Message(
                        topic=topic,
                        data=base64.b64decode(r["message"].get("data", "")),
                        attributes=dict(r["message"].get("attributes", {})),
                        message_id=str(r["message"]["messageId"]),
                        publish_time=str(r["message"].get("publishTime", "")),
                    )
                    for r in received
                )

    def published(self, topic: str) -> list[Message]:
        """Messages published to `topic` since it was created here, oldest id first."""
        self._drain(topic)
        with self._lock:
            return sorted(
                self._received[topic],
                key=lambda m: int(m.message_id) if m.message_id.isdigit() else 0,
            )

    def clear_published(self, topic: str) -> None:
        """Forgets what `published(topic)` has seen so far (and what is still undrained)."""
        self._drain(topic)
        with self._lock:
            self._received[topic].clear()

    def wait_for_messages(self, topic: str, count: int = 1, timeout: float = 10.0) -> list[Message]:
        """Blocks until `count` messages were published to `topic`, then returns them all."""
        deadline = time.monotonic() + timeout
        while len(found := self.published(topic)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages on {topic} in {timeout}s")
            time.sleep(0.1)
        return found
