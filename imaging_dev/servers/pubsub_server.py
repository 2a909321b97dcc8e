"""An in-process Pub/Sub server speaking the real gRPC protocol (google.pubsub.v1), for tests.

A test double of Google Cloud Pub/Sub: no Pub/Sub emulator can be installed here, so this
implements the subset of `google.pubsub.v1.Publisher` and `Subscriber` our code and the demo
use, on the real wire protocol, so that the unmodified `google.cloud.pubsub_v1` clients talk to
it when `PUBSUB_EMULATOR_HOST=<.host>` is set. It records what was published (`.published()`)
and can inject transient failures (`.fail_next()`).

Also serves the REST publish method at `.rest_url` (`publish_url(topic)`), for publishers that
cannot speak gRPC, such as Orthanc's store-notification hook.

Implemented: Publisher CreateTopic, GetTopic, DeleteTopic, ListTopics, Publish; Subscriber
CreateSubscription, GetSubscription, DeleteSubscription, Pull, Acknowledge, ModifyAckDeadline,
StreamingPull; push subscriptions (`push_config.push_endpoint`: the wrapped JSON envelope is
POSTed, 102/200/201/202/204 acknowledges, anything else is retried with backoff) and
dead-lettering (`dead_letter_policy`: after `max_delivery_attempts` deliveries the message is
published to the dead-letter topic with the CloudPubSubDeadLetterSource* attributes).
Not implemented (UNIMPLEMENTED): snapshots, seek, schemas, ordering guarantees, exactly-once
delivery, filters, unwrapped push.

Differences from the real service, on purpose: publishing to a topic that does not exist creates
it when `auto_create_topics` is true (the default), because in production Terraform creates the
topics and tests should not have to repeat that; set it to False to get the real NOT_FOUND.
Push retries use this server's `push_backoff` (default 0.1 s doubling to 2 s) instead of the
subscription's retry policy (10 s to 600 s in production), so a demo does not stall; push
requests carry no OIDC token (nothing here could sign one).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import requests
from google.protobuf import empty_pb2
from google.pubsub_v1 import types as pubsub

from imaging_dev.servers._base import LOOPBACK, LocalServer
from imaging_dev.servers._pubsub_rest import PubSubRestServer

_TOPIC_NAME = re.compile(r"^projects/[^/]+/topics/[A-Za-z][\w.~+%-]{2,254}$")
_SUBSCRIPTION_NAME = re.compile(r"^projects/[^/]+/subscriptions/[A-Za-z][\w.~+%-]{2,254}$")
_MAX_PUBLISH_BYTES = 10 * 1024 * 1024
_PUSH_ACK_STATUSES = frozenset({102, 200, 201, 202, 204})  # what Pub/Sub push treats as an ack


class _RpcError(Exception):
    """Raised inside a handler to end the RPC with a status code, like the real service does."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Message:
    """A message as the server stored it."""

    topic: str
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: datetime
    ordering_key: str = ""


@dataclass
class _Outstanding:
    message: Message
    deadline: float
    delivery_attempt: int


@dataclass
class _Pending:
    message: Message
    attempts: int = 0  # deliveries so far
    not_before: float = 0.0  # monotonic time before which it is not redelivered (push backoff)


@dataclass(frozen=True)
class PushAttempt:
    """One push delivery: `status` is the endpoint's HTTP status, None if it was unreachable."""

    subscription: str
    message_id: str
    delivery_attempt: int
    status: int | None


@dataclass
class _Subscription:
    proto: pubsub.Subscription
    backlog: list[_Pending] = field(default_factory=list)
    outstanding: dict[str, _Outstanding] = field(default_factory=dict)  # by ack id

    @property
    def ack_deadline(self) -> float:
        return float(self.proto.ack_deadline_seconds or 10)

    @property
    def push_endpoint(self) -> str:
        return str(self.proto.push_config.push_endpoint)

    @property
    def max_delivery_attempts(self) -> int | None:
        policy = self.proto.dead_letter_policy
        if not policy.dead_letter_topic:
            return None
        return int(policy.max_delivery_attempts or 5)


class PubSubServer(LocalServer):
    """`with PubSubServer() as ps: os.environ["PUBSUB_EMULATOR_HOST"] = ps.host`."""

    name = "pubsub"

    def __init__(
        self,
        *,
        auto_create_topics: bool = True,
        pull_wait: float = 0.5,
        max_workers: int = 16,
        push_backoff: tuple[float, float] = (0.1, 2.0),
        push_concurrency: int = 4,
    ) -> None:
        super().__init__()
        self.auto_create_topics = auto_create_topics
        self.pull_wait = pull_wait  # how long an empty Pull waits for a message, in seconds
        self.push_backoff = push_backoff  # first and largest delay between push retries
        self.push_concurrency = push_concurrency  # push requests in flight at most
        self._push_inflight = 0
        self.push_attempts: list[PushAttempt] = []
        self._push_thread: threading.Thread | None = None
        self._push_pool: futures.ThreadPoolExecutor | None = None
        self._push_session: requests.Session | None = None
        self._stopping = threading.Event()
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self.port = 0
        self._lock = threading.Condition()
        self._topics: dict[str, pubsub.Topic] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._published: list[Message] = []
        self._failures: dict[str, list[grpc.StatusCode]] = {}
        self._ids = itertools.count(1)
        self._ack_ids = itertools.count(1)
        self.calls: list[str] = []  # method names in the order they were received
        self._rest = PubSubRestServer(self._publish_over_rest)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The value for PUBSUB_EMULATOR_HOST."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST publish method (see _pubsub_rest), for non-gRPC publishers."""
        return self._rest.url

    def publish_url(self, topic: str) -> str:
        """The REST URL that publishes to `topic` (a full topic name)."""
        return f"{self.rest_url}/v1/{topic}:publish"

    def _start(self) -> None:
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="pubsub-server"
            )
        )
        server.add_generic_rpc_handlers(self._handlers())
        port = server.add_insecure_port(f"{LOOPBACK}:0")
        if port == 0:
            raise RuntimeError("Pub/Sub server could not bind a port on 127.0.0.1")
        server.start()
        self._server, self.port = server, port
        self._stopping.clear()
        self._push_session = requests.Session()
        self._push_inflight = 0
        self._push_pool = futures.ThreadPoolExecutor(
            max_workers=self.push_concurrency, thread_name_prefix="pubsub-push"
        )
        self._push_thread = threading.Thread(
            target=self._push_loop, daemon=True, name="pubsub-push-dispatch"
        )
        self._push_thread.start()
        self._rest.start()

    def _stop(self) -> None:
        self._rest.stop()
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._push_thread is not None:
            self._push_thread.join(timeout=5)
            self._push_thread = None
        if self._push_pool is not None:
            self._push_pool.shutdown(wait=False, cancel_futures=True)
            self._push_pool = None
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=0.5).wait(timeout=5)
        if self._push_session is not None:
            self._push_session.close()
            self._push_session = None

    # --- test controls -----------------------------------------------------------------------

    def published(self, topic: str | None = None) -> list[Message]:
        """Messages published so far, oldest first; `topic` is a full name or its last part."""
        with self._lock:
            return [m for m in self._published if topic is None or _same_name(m.topic, topic)]

    def wait_for_messages(self, topic: str, count: int = 1, timeout: float = 10.0) -> list[Message]:
        """Blocks until `count` messages were published to `topic`, then returns them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(found := self.published(topic)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{len(found)} of {count} messages published to {topic} in {timeout}s"
                    )
                self._lock.wait(remaining)
            return found

    def wait_for_push_attempts(self, count: int, timeout: float = 10.0) -> list[PushAttempt]:
        """Blocks until `count` push deliveries were attempted (any outcome), returns them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.push_attempts) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{len(self.push_attempts)} of {count} push attempts in {timeout}s"
                    )
                self._lock.wait(remaining)
            return list(self.push_attempts)

    def clear(self) -> None:
        """Forgets topics, subscriptions, messages, pending failures and the call log."""
        with self._lock:
            self._topics.clear()
            self._subscriptions.clear()
            self._published.clear()
            self._failures.clear()
            self.calls.clear()
            self.push_attempts.clear()

    def reset(self) -> None:
        """Same as clear(): the name every local server uses for "back to empty"."""
        self.clear()

    def fail_next(
        self,
        n: int = 1,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        method: str = "Publish",
    ) -> None:
        """Makes the next `n` calls of `method` (e.g. "Publish", "Pull") end with `code`."""
        with self._lock:
            self._failures.setdefault(method, []).extend([code] * n)

    def create_topic(self, topic: str) -> None:
        """Creates a topic directly (tests' shortcut for a PublisherClient.create_topic)."""
        self._create_topic(pubsub.Topic(name=topic))

    def create_push_subscription(
        self,
        subscription: str,
        topic: str,
        endpoint: str,
        *,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        ack_deadline_seconds: int = 10,
    ) -> None:
        """Creates a push subscription directly (the topic is created if missing).

        As in Pub/Sub, `ack_deadline_seconds` is also the push request timeout: a handler that
        takes longer counts as failed and the message is redelivered.
        """
        with self._lock:
            if topic not in self._topics:
                self._create_topic(pubsub.Topic(name=topic))
        request = pubsub.Subscription(
            name=subscription,
            topic=topic,
            push_config=pubsub.PushConfig(push_endpoint=endpoint),
            ack_deadline_seconds=ack_deadline_seconds,
        )
        if dead_letter_topic:
            request.dead_letter_policy = pubsub.DeadLetterPolicy(
                dead_letter_topic=dead_letter_topic, max_delivery_attempts=max_delivery_attempts
            )
        self._create_subscription(request)

    # --- Publisher ---------------------------------------------------------------------------

    def _create_topic(self, request: pubsub.Topic) -> pubsub.Topic:
        _check_name(request.name, _TOPIC_NAME, "topic")
        with self._lock:
            if request.name in self._topics:
                raise _RpcError(grpc.StatusCode.ALREADY_EXISTS, "Topic already exists")
            self._topics[request.name] = request
            return request

    def _get_topic(self, request: pubsub.GetTopicRequest) -> pubsub.Topic:
        with self._lock:
            return self._topic(request.topic)

    def _delete_topic(self, request: pubsub.DeleteTopicRequest) -> empty_pb2.Empty:
        with self._lock:
            self._topic(request.topic)
            del self._topics[request.topic]
            for sub in self._subscriptions.values():
                if sub.proto.topic == request.topic:
                    sub.proto.topic = "_deleted-topic_"
        return empty_pb2.Empty()

    def _list_topics(self, request: pubsub.ListTopicsRequest) -> pubsub.ListTopicsResponse:
        with self._lock:
            prefix = request.project.rstrip("/") + "/topics/"
            return pubsub.ListTopicsResponse(
                topics=[t for name, t in sorted(self._topics.items()) if name.startswith(prefix)]
            )

    def _publish(self, request: pubsub.PublishRequest) -> pubsub.PublishResponse:
        if not request.messages:
            raise _RpcError(grpc.StatusCode.INVALID_ARGUMENT, "No messages in the request")
        size = sum(
            len(m.data) + sum(len(k) + len(v) for k, v in m.attributes.items())
            for m in request.messages
        )
        if size > _MAX_PUBLISH_BYTES:
            raise _RpcError(grpc.StatusCode.INVALID_ARGUMENT, "Request payload is too large")
        for m in request.messages:
            if not m.data and not m.attributes:
                raise _RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Some messages contain neither data nor attributes",
                )
            _check_attributes(dict(m.attributes))
        with self._lock:
            if request.topic not in self._topics:
                if not self.auto_create_topics:
                    raise _RpcError(grpc.StatusCode.NOT_FOUND, "Topic not found")
                _check_name(request.topic, _TOPIC_NAME, "topic")
                self._topics[request.topic] = pubsub.Topic(name=request.topic)
            ids = [
                self._store(
                    request.topic, bytes(m.data), dict(m.attributes), m.ordering_key
                ).message_id
                for m in request.messages
            ]
            return pubsub.PublishResponse(message_ids=ids)

    def _store(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str = ""
    ) -> Message:
        """Records a message and fans it out to the topic's subscriptions (lock held)."""
        message = Message(
            topic=topic,
            data=data,
            attributes=attributes,
            message_id=str(next(self._ids)),
            publish_time=datetime.now(UTC),
            ordering_key=ordering_key,
        )
        self._published.append(message)
        for sub in self._subscriptions.values():
            if sub.proto.topic == topic:
                sub.backlog.append(_Pending(message))
        self._lock.notify_all()
        return message

    def _publish_over_rest(self, request: pubsub.PublishRequest) -> pubsub.PublishResponse:
        code = self._record_call("Publish")
        if code is not None:
            raise _RpcError(code, f"injected failure ({code.name}) by the local Pub/Sub server")
        return self._publish(request)

    # --- Subscriber --------------------------------------------------------------------------

    def _create_subscription(self, request: pubsub.Subscription) -> pubsub.Subscription:
        _check_name(request.name, _SUBSCRIPTION_NAME, "subscription")
        with self._lock:
            self._topic(request.topic)
            if request.name in self._subscriptions:
                raise _RpcError(grpc.StatusCode.ALREADY_EXISTS, "Subscription already exists")
            if not request.ack_deadline_seconds:
                request.ack_deadline_seconds = 10
            if not 10 <= request.ack_deadline_seconds <= 600:
                raise _RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "ack_deadline_seconds must be between 10 and 600",
                )
            policy = request.dead_letter_policy
            if policy.dead_letter_topic and not 5 <= (policy.max_delivery_attempts or 5) <= 100:
                raise _RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "max_delivery_attempts must be between 5 and 100",
                )
            self._subscriptions[request.name] = _Subscription(proto=request)
            return request

    def _get_subscription(self, request: pubsub.GetSubscriptionRequest) -> pubsub.Subscription:
        with self._lock:
            return self._subscription(request.subscription).proto

    def _delete_subscription(self, request: pubsub.DeleteSubscriptionRequest) -> empty_pb2.Empty:
        with self._lock:
            self._subscription(request.subscription)
            del self._subscriptions[request.subscription]
        return empty_pb2.Empty()

    def _pull(self, request: pubsub.PullRequest) -> pubsub.PullResponse:
        deadline = time.monotonic() + (0 if request.return_immediately else self.pull_wait)
        with self._lock:
            while True:
                sub = self._subscription(request.subscription)
                received = self._take(sub, request.max_messages or 1)
                remaining = deadline - time.monotonic()
                if received or remaining <= 0:
                    return pubsub.PullResponse(received_messages=received)
                self._lock.wait(remaining)

    def _acknowledge(self, request: pubsub.AcknowledgeRequest) -> empty_pb2.Empty:
        with self._lock:
            sub = self._subscription(request.subscription)
            for ack_id in request.ack_ids:
                sub.outstanding.pop(ack_id, None)  # acking twice or late is not an error
        return empty_pb2.Empty()

    def _modify_ack_deadline(self, request: pubsub.ModifyAckDeadlineRequest) -> empty_pb2.Empty:
        with self._lock:
            sub = self._subscription(request.subscription)
            self._modify(sub, request.ack_ids, request.ack_deadline_seconds)
        return empty_pb2.Empty()

    def _streaming_pull(
        self, requests: Iterator[pubsub.StreamingPullRequest], context: grpc.ServicerContext
    ) -> Iterator[pubsub.StreamingPullResponse]:
        first = next(requests)
        with self._lock:
            self._subscription(first.subscription)
        name = first.subscription
        stream_deadline = float(first.stream_ack_deadline_seconds or 10)

        def consume() -> None:
            # Acks and deadline changes arrive on the request stream while we send messages;
            # the stream ends with an RpcError when the client cancels, which is normal.
            with contextlib.suppress(grpc.RpcError):
                for req in itertools.chain([first], requests):
                    with self._lock:
                        sub = self._subscriptions.get(name)
                        if sub is None:
                            return
                        for ack_id in req.ack_ids:
                            sub.outstanding.pop(ack_id, None)
                        self._modify(sub, req.modify_deadline_ack_ids, *req.modify_deadline_seconds)
                        self._lock.notify_all()

        threading.Thread(target=consume, daemon=True, name="pubsub-streaming-acks").start()
        while context.is_active() and self._server is not None:
            with self._lock:
                sub = self._subscriptions.get(name)
                if sub is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, "Subscription does not exist")
                received = self._take(sub, 100, deadline=stream_deadline)
                if not received:
                    self._lock.wait(0.2)
                    continue
            yield pubsub.StreamingPullResponse(received_messages=received)

    # --- helpers (call with the lock held) ---------------------------------------------------

    def _topic(self, name: str) -> pubsub.Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise _RpcError(grpc.StatusCode.NOT_FOUND, "Topic not found")
        return topic

    def _subscription(self, name: str) -> _Subscription:
        sub = self._subscriptions.get(name)
        if sub is None:
            raise _RpcError(grpc.StatusCode.NOT_FOUND, "Subscription does not exist")
        return sub

    def _take(
        self, sub: _Subscription, max_messages: int, deadline: float | None = None
    ) -> list[pubsub.ReceivedMessage]:
        now = time.monotonic()
        for ack_id, out in list(sub.outstanding.items()):  # expired leases are redelivered
            if out.deadline <= now:
                del sub.outstanding[ack_id]
                sub.backlog.append(_Pending(out.message, out.delivery_attempt))
        received: list[pubsub.ReceivedMessage] = []
        keep: list[_Pending] = []
        for pending in sub.backlog:
            if len(received) >= max_messages or pending.not_before > now:
                keep.append(pending)
            elif self._dead_letter(sub, pending):
                continue
            else:
                received.append(self._lease(sub, pending, now + (deadline or sub.ack_deadline)))
        sub.backlog = keep
        return received

    def _lease(
        self, sub: _Subscription, pending: _Pending, deadline: float
    ) -> pubsub.ReceivedMessage:
        ack_id = f"{sub.proto.name}:{next(self._ack_ids)}"
        attempt = pending.attempts + 1
        message = pending.message
        sub.outstanding[ack_id] = _Outstanding(message, deadline, attempt)
        return pubsub.ReceivedMessage(
            ack_id=ack_id,
            message=pubsub.PubsubMessage(
                data=message.data,
                attributes=message.attributes,
                message_id=message.message_id,
                publish_time=message.publish_time,
                ordering_key=message.ordering_key,
            ),
            # Like the service: only subscriptions with a dead-letter policy count attempts.
            delivery_attempt=attempt if sub.max_delivery_attempts else 0,
        )

    def _dead_letter(self, sub: _Subscription, pending: _Pending) -> bool:
        """Forwards a message that used up its delivery attempts; True if it did."""
        limit = sub.max_delivery_attempts
        if limit is None or pending.attempts < limit:
            return False
        attributes = {
            **pending.message.attributes,
            "CloudPubSubDeadLetterSourceDeliveryCount": str(pending.attempts),
            "CloudPubSubDeadLetterSourceSubscription": sub.proto.name.rsplit("/", 1)[-1],
            "CloudPubSubDeadLetterSourceSubscriptionProject": sub.proto.name.split("/")[1],
            "CloudPubSubDeadLetterSourceTopicPublishTime": pending.message.publish_time.isoformat(),
        }
        topic = sub.proto.dead_letter_policy.dead_letter_topic
        if topic not in self._topics:
            if not self.auto_create_topics:
                return False  # the service keeps the message when it cannot forward it
            self._topics[topic] = pubsub.Topic(name=topic)  # as Publish does, see the docstring
        self._store(topic, pending.message.data, attributes, pending.message.ordering_key)
        return True

    def _modify(self, sub: _Subscription, ack_ids: Any, *seconds: int) -> None:
        now = time.monotonic()
        # Unary calls share one deadline for all ids; streaming requests give one per id.
        for ack_id, secs in zip(ack_ids, itertools.cycle(seconds or (0,)), strict=False):
            out = sub.outstanding.get(ack_id)
            if out is None:
                continue
            if secs == 0:  # a nack: redeliver now
                del sub.outstanding[ack_id]
                sub.backlog.insert(0, _Pending(out.message, out.delivery_attempt))
            else:
                out.deadline = now + secs
        self._lock.notify_all()

    # --- push delivery -----------------------------------------------------------------------

    def _push_loop(self) -> None:
        # Messages are leased only when a worker is free to send them at once: a lease that
        # waited in a queue could expire before its request even started, be delivered again,
        # and a slow endpoint would then get ever more duplicates instead of fewer requests.
        while not self._stopping.is_set():
            # (subscription, endpoint, ack id, lease, delivery attempt, timeout): _deliver's args
            jobs: list[tuple[str, str, str, _Outstanding, int, float]] = []
            with self._lock:
                for sub in self._subscriptions.values():
                    free = self.push_concurrency - self._push_inflight - len(jobs)
                    if sub.push_endpoint and free > 0:
                        # The lease outlives the request timeout (the ack deadline) a little,
                        # so a timed-out push is retried with backoff, not re-leased at once.
                        jobs.extend(
                            (
                                sub.proto.name,
                                sub.push_endpoint,
                                r.ack_id,
                                sub.outstanding[r.ack_id],
                                r.delivery_attempt,
                                sub.ack_deadline,
                            )
                            for r in self._take(sub, free, deadline=sub.ack_deadline + 5)
                        )
                if not jobs:
                    self._lock.wait(0.05)  # publish, nack and stop notify; backoff needs polling
                    continue
                self._push_inflight += len(jobs)
            pool = self._push_pool
            for job in jobs:
                if pool is not None and not self._stopping.is_set():
                    pool.submit(self._push_one, job)

    def _push_one(self, job: tuple[str, str, str, _Outstanding, int, float]) -> None:
        try:
            self._deliver(*job)
        finally:
            with self._lock:
                self._push_inflight -= 1
                self._lock.notify_all()

    def _deliver(
        self,
        subscription: str,
        endpoint: str,
        ack_id: str,
        lease: _Outstanding,
        delivery_attempt: int,
        timeout: float,
    ) -> None:
        message = lease.message
        publish_time = message.publish_time.isoformat().replace("+00:00", "Z")
        envelope: dict[str, Any] = {
            "message": {
                "data": base64.b64encode(message.data).decode(),
                "attributes": dict(message.attributes),
                "messageId": message.message_id,
                "message_id": message.message_id,
                "publishTime": publish_time,
                "publish_time": publish_time,
            },
            "subscription": subscription,
        }
        if message.ordering_key:
            envelope["message"]["orderingKey"] = message.ordering_key
        if delivery_attempt:
            envelope["deliveryAttempt"] = delivery_attempt
        status: int | None = None
        session = self._push_session
        try:
            if session is not None:
                status = session.post(endpoint, json=envelope, timeout=timeout).status_code
        except requests.RequestException:
            status = None
        with self._lock:
            self.push_attempts.append(
                PushAttempt(subscription, message.message_id, lease.delivery_attempt, status)
            )
            self._lock.notify_all()
            sub = self._subscriptions.get(subscription)
            out = sub.outstanding.pop(ack_id, None) if sub else None
            if sub is None or out is None or status in _PUSH_ACK_STATUSES:
                return
            first, largest = self.push_backoff
            delay = min(largest, first * 2 ** (out.delivery_attempt - 1))
            sub.backlog.append(
                _Pending(out.message, out.delivery_attempt, time.monotonic() + delay)
            )
            self._lock.notify_all()

    # --- gRPC plumbing -----------------------------------------------------------------------

    def _handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        def unary(
            method: str,
            fn: Callable[[Any], Any],
            request_type: Any,
            response_serializer: Callable[[Any], bytes],
        ) -> grpc.RpcMethodHandler:
            def handler(request: Any, context: grpc.ServicerContext) -> Any:
                self._before(method, context)
                try:
                    return fn(request)
                except _RpcError as err:
                    context.abort(err.code, err.details)

            return grpc.unary_unary_rpc_method_handler(
                handler,
                request_deserializer=request_type.deserialize,
                response_serializer=response_serializer,
            )

        def proto_plus(message_type: Any) -> Callable[[Any], bytes]:
            serialize: Callable[[Any], bytes] = message_type.serialize
            return serialize

        def empty(message: empty_pb2.Empty) -> bytes:
            return message.SerializeToString()

        def streaming_pull(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            self._before("StreamingPull", context)
            try:
                yield from self._streaming_pull(requests, context)
            except _RpcError as err:
                context.abort(err.code, err.details)

        publisher = {
            "CreateTopic": unary(
                "CreateTopic", self._create_topic, pubsub.Topic, proto_plus(pubsub.Topic)
            ),
            "GetTopic": unary(
                "GetTopic", self._get_topic, pubsub.GetTopicRequest, proto_plus(pubsub.Topic)
            ),
            "DeleteTopic": unary(
                "DeleteTopic", self._delete_topic, pubsub.DeleteTopicRequest, empty
            ),
            "ListTopics": unary(
                "ListTopics",
                self._list_topics,
                pubsub.ListTopicsRequest,
                proto_plus(pubsub.ListTopicsResponse),
            ),
            "Publish": unary(
                "Publish", self._publish, pubsub.PublishRequest, proto_plus(pubsub.PublishResponse)
            ),
        }
        subscriber = {
            "CreateSubscription": unary(
                "CreateSubscription",
                self._create_subscription,
                pubsub.Subscription,
                proto_plus(pubsub.Subscription),
            ),
            "GetSubscription": unary(
                "GetSubscription",
                self._get_subscription,
                pubsub.GetSubscriptionRequest,
                proto_plus(pubsub.Subscription),
            ),
            "DeleteSubscription": unary(
                "DeleteSubscription",
                self._delete_subscription,
                pubsub.DeleteSubscriptionRequest,
                empty,
            ),
            "Pull": unary("Pull", self._pull, pubsub.PullRequest, proto_plus(pubsub.PullResponse)),
            "Acknowledge": unary(
                "Acknowledge", self._acknowledge, pubsub.AcknowledgeRequest, empty
            ),
            "ModifyAckDeadline": unary(
                "ModifyAckDeadline",
                self._modify_ack_deadline,
                pubsub.ModifyAckDeadlineRequest,
                empty,
            ),
            "StreamingPull": grpc.stream_stream_rpc_method_handler(
                streaming_pull,
                request_deserializer=pubsub.StreamingPullRequest.deserialize,
                response_serializer=proto_plus(pubsub.StreamingPullResponse),
            ),
        }
        return (
            grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", publisher),
            grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", subscriber),
        )

    def _record_call(self, method: str) -> grpc.StatusCode | None:
        """Logs a call; the injected failure it must end with, if any (see fail_next)."""
        with self._lock:
            self.calls.append(method)
            pending = self._failures.get(method)
            return pending.pop(0) if pending else None

    def _before(self, method: str, context: grpc.ServicerContext) -> None:
        code = self._record_call(method)
        if code is not None:
            context.abort(code, f"injected failure ({code.name}) by the local Pub/Sub server")


def _check_attributes(attributes: dict[str, str]) -> None:
    """Pub/Sub's documented attribute limits; breaking one fails the whole Publish."""
    if len(attributes) > 100:
        raise _RpcError(
            grpc.StatusCode.INVALID_ARGUMENT, "A message can have at most 100 attributes"
        )
    for key, value in attributes.items():
        if not key or len(key.encode()) > 256 or len(value.encode()) > 1024:
            raise _RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid attribute {key[:40]!r}: keys must be 1-256 bytes and "
                "values at most 1024 bytes",
            )
        if key.startswith("goog"):
            raise _RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Attribute keys starting with 'goog' are reserved: {key[:40]!r}",
            )


def _check_name(name: str, pattern: re.Pattern[str], kind: str) -> None:
    if not pattern.match(name):
        raise _RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid [{kind}] name: ({name})")


def _same_name(full: str, wanted: str) -> bool:
    return full == wanted or ("/" not in wanted and full.rsplit("/", 1)[-1] == wanted)
