"""An in-process event bus with JetStream's semantics, for unit tests only (nothing survives the process).

It keeps what the roles rely on, proven by the same contract suite as `NatsEventBus`:

- streams from `STREAMS` with limits or work-queue retention (an acked message leaves a work-queue stream,
  and a second consumer with overlapping subjects is refused) and discard-new: a publish that would pass
  `max_bytes` raises `BusFull`; a repeated `msg_id` inside the duplicate window is acknowledged with
  `duplicate=True` and stored once; `max_age_seconds` expires old messages;
- durable consumers shared by name (across every bus on the same `MemoryBroker`), first delivering in stream
  order, redelivering a message after `ack_wait_seconds` until it is acked or terminated, counting deliveries,
  honouring `nak(delay)`;
- `subscribe` for live, non-durable delivery of new messages.

Several `MemoryEventBus` instances given one `MemoryBroker` behave like several processes on one NATS server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mintlog.adapters.bus.live import LiveMessage
from mintlog.domain.streams import STREAMS, StreamSpec
from mintlog.errors import BusFull, BusUnavailable, PayloadTooLarge
from mintlog.ports.bus import BusConsumer, BusMessage, ConsumerBacklog, PublishAck, StreamBacklog

__all__ = ["MemoryBroker", "MemoryEventBus", "subject_matches"]

logger = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
_MESSAGE_OVERHEAD_BYTES = 16
_SUBSCRIBER_QUEUE_SIZE = 10_000
_INVALID_NAME_CHARS = frozenset(" .*>/\\\t\r\n")  # what NATS refuses in a consumer name


def _filters_overlap(first: str, second: str) -> bool:
    """True when some subject could match both filters (JetStream refuses such consumers on a work queue)."""
    left, right = first.split("."), second.split(".")
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else None
        b = right[index] if index < len(right) else None
        if a == ">" or b == ">":
            return a is not None and b is not None
        if a is None or b is None:
            return False
        if a != b and "*" not in (a, b):
            return False
    return True


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` matches one token, a final `>` one or more tokens."""
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for index, part in enumerate(pattern_tokens):
        if part == ">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens) or part not in ("*", subject_tokens[index]):
            return False
    return len(pattern_tokens) == len(subject_tokens)


@dataclass(slots=True)
class _StoredMessage:
    sequence: int
    subject: str
    data: bytes
    headers: dict[str, str]
    stored_at: float
    size: int
    stored_at_utc: datetime


@dataclass(slots=True)
class _Pending:
    deliveries: int
    redeliver_at: float


@dataclass(slots=True)
class _ConsumerState:
    stream: _Stream
    durable: str
    filter_subject: str
    ack_wait_seconds: float
    next_sequence: int = 1
    pending: dict[int, _Pending] = field(default_factory=dict[int, _Pending])

    def take(self, max_messages: int, now: float) -> list[tuple[_StoredMessage, int]]:
        """Deliver up to `max_messages`: due redeliveries first, then new messages in stream order."""
        delivered: list[tuple[_StoredMessage, int]] = []
        for sequence in sorted(seq for seq, pending in self.pending.items() if pending.redeliver_at <= now):
            if len(delivered) >= max_messages:
                return delivered
            stored = self.stream.messages.get(sequence)
            if stored is None:  # expired from the stream meanwhile
                del self.pending[sequence]
                continue
            delivered.append((stored, self._deliver(sequence, now)))
        while len(delivered) < max_messages and self.next_sequence <= self.stream.last_sequence:
            sequence = self.next_sequence
            self.next_sequence += 1
            stored = self.stream.messages.get(sequence)
            if stored is not None and subject_matches(self.filter_subject, stored.subject):
                delivered.append((stored, self._deliver(sequence, now)))
        return delivered

    def _deliver(self, sequence: int, now: float) -> int:
        pending = self.pending.get(sequence)
        deliveries = 1 if pending is None else pending.deliveries + 1
        self.pending[sequence] = _Pending(deliveries, now + self.ack_wait_seconds)
        return deliveries

    def next_redelivery(self) -> float | None:
        return min((pending.redeliver_at for pending in self.pending.values()), default=None)


@dataclass(slots=True)
class _Stream:
    name: str
    subjects: tuple[str, ...]
    max_bytes: int | None
    max_age_seconds: float | None
    duplicate_window_seconds: float
    messages: dict[int, _StoredMessage] = field(default_factory=dict[int, _StoredMessage])
    last_sequence: int = 0
    size: int = 0
    msg_ids: dict[str, tuple[int, float]] = field(default_factory=dict[str, tuple[int, float]])
    consumers: dict[str, _ConsumerState] = field(default_factory=dict[str, _ConsumerState])
    work_queue: bool = False

    def remove(self, sequence: int) -> None:
        """Delete a consumed message (work-queue retention), freeing its space."""
        stored = self.messages.pop(sequence, None)
        if stored is not None:
            self.size -= stored.size

    def expire(self, now: float) -> None:
        if self.max_age_seconds is not None:
            while self.messages:
                oldest = next(iter(self.messages.values()))
                if now - oldest.stored_at < self.max_age_seconds:
                    break
                del self.messages[oldest.sequence]
                self.size -= oldest.size
        while self.msg_ids:  # insertion order is time order
            msg_id, (_, seen_at) = next(iter(self.msg_ids.items()))
            if now - seen_at < self.duplicate_window_seconds:
                break
            del self.msg_ids[msg_id]


@dataclass(slots=True)
class _Subscriber:
    pattern: str
    owner: MemoryEventBus
    queue: asyncio.Queue[LiveMessage | None]


class MemoryBroker:
    """The shared state of in-memory buses: streams, durable consumers and live subscribers."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._streams: dict[str, _Stream] = {}
        self._subscribers: list[_Subscriber] = []
        self._changed = asyncio.Event()

    def configure_stream(
        self,
        spec: StreamSpec,
        *,
        max_bytes: int | None,
        max_age_seconds: float | None,
        duplicate_window: float,
    ) -> None:
        """Create the stream or update its limits (messages and consumers are kept)."""
        stream = self._streams.get(spec.name)
        if stream is None:
            self._streams[spec.name] = _Stream(
                spec.name, spec.subjects, max_bytes, max_age_seconds, duplicate_window, work_queue=spec.work_queue
            )
            return
        stream.subjects = spec.subjects
        stream.max_bytes = max_bytes
        stream.max_age_seconds = max_age_seconds
        stream.duplicate_window_seconds = duplicate_window

    def stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            raise BusUnavailable(f"stream {name} does not exist (was the bus started?)")
        return stream

    def publish(self, subject: str, payload: bytes, *, msg_id: str | None, headers: dict[str, str]) -> PublishAck:
        stream = next((s for s in self._streams.values() if any(subject_matches(p, subject) for p in s.subjects)), None)
        if stream is None:
            raise BusUnavailable(f"no stream answered for subject {subject}")
        now = self.clock()
        stream.expire(now)
        if msg_id is not None and msg_id in stream.msg_ids:
            return PublishAck(stream.name, stream.msg_ids[msg_id][0], duplicate=True)
        size = (
            len(subject)
            + len(payload)
            + sum(len(key) + len(value) + 4 for key, value in headers.items())
            + _MESSAGE_OVERHEAD_BYTES
        )
        if stream.max_bytes is not None and stream.size + size > stream.max_bytes:
            raise BusFull(f"stream {stream.name} is full ({stream.size} of {stream.max_bytes} bytes)")
        stream.last_sequence += 1
        stream.messages[stream.last_sequence] = _StoredMessage(
            stream.last_sequence, subject, payload, dict(headers), now, size, datetime.now(UTC)
        )
        stream.size += size
        if msg_id is not None:
            stream.msg_ids[msg_id] = (stream.last_sequence, now)
        self.deliver_live(subject, payload, headers)
        self.notify()
        return PublishAck(stream.name, stream.last_sequence)

    def deliver_live(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        for subscriber in self._subscribers:
            if subject_matches(subscriber.pattern, subject):
                try:
                    subscriber.queue.put_nowait(LiveMessage(subject, payload, dict(headers)))
                except asyncio.QueueFull:  # a slow live reader loses messages, as with core NATS
                    logger.warning("live subscriber on %s is too slow; dropped a message", subscriber.pattern)

    def add_subscriber(self, subscriber: _Subscriber) -> None:
        self._subscribers.append(subscriber)

    def remove_subscriber(self, subscriber: _Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def end_subscriptions(self, owner: MemoryEventBus) -> None:
        for subscriber in [s for s in self._subscribers if s.owner is owner]:
            self._subscribers.remove(subscriber)
            try:
                subscriber.queue.put_nowait(None)
            except asyncio.QueueFull:
                subscriber.queue.get_nowait()
                subscriber.queue.put_nowait(None)

    def notify(self) -> None:
        """Wake every fetch waiting for messages."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, timeout_seconds: float) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), max(timeout_seconds, 0.0))


class MemoryEventBus:
    """`EventBus` held in memory; give several instances one `MemoryBroker` to share streams and consumers."""

    def __init__(
        self,
        *,
        duplicate_window_seconds: float = 600.0,
        max_payload_bytes: int = 8 * 1024 * 1024,
        max_bytes: int | None = None,
        max_age_seconds: float | None = None,
        broker: MemoryBroker | None = None,
    ) -> None:
        self._duplicate_window = duplicate_window_seconds
        self._max_payload_bytes = max_payload_bytes
        self._max_bytes = max_bytes
        self._max_age = max_age_seconds
        self.broker = broker or MemoryBroker()
        self._started = False
        self._closed = False

    @property
    def max_payload_bytes(self) -> int:
        """The largest payload one publish may carry."""
        return self._max_payload_bytes

    async def start(self) -> None:
        """Create or update every stream in `STREAMS` with this bus's limits (idempotent)."""
        self._check_not_closed()
        for spec in STREAMS:
            self.broker.configure_stream(
                spec,
                max_bytes=self._max_bytes,
                max_age_seconds=self._max_age,
                duplicate_window=self._duplicate_window,
            )
        self._started = True

    async def close(self) -> None:
        """End this bus's live subscriptions; later calls raise `BusUnavailable`. Idempotent."""
        self._closed = True
        self.broker.end_subscriptions(self)

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> PublishAck:
        """Store `payload` in the stream of `subject` (deduplicated by `msg_id`); see the module docstring."""
        self._check_usable()
        if len(payload) > self._max_payload_bytes:
            raise PayloadTooLarge(
                f"a bus message carries at most {self._max_payload_bytes} bytes, this one has {len(payload)}"
            )
        message_headers = dict(headers) if headers else {}
        if msg_id is not None:
            message_headers[MSG_ID_HEADER] = msg_id
        return self.broker.publish(subject, payload, msg_id=msg_id, headers=message_headers)

    async def consumer(self, stream: str, durable: str, *, filter_subject: str, ack_wait_seconds: float) -> BusConsumer:
        """Create, update or bind the durable consumer `durable` on `stream` (idempotent)."""
        self._check_usable()
        if not durable or any(char in _INVALID_NAME_CHARS for char in durable):
            raise ValueError(f"invalid durable consumer name {durable!r}")
        target = self.broker.stream(stream)
        state = target.consumers.get(durable)
        if target.work_queue and any(
            other.durable != durable and _filters_overlap(other.filter_subject, filter_subject)
            for other in target.consumers.values()
        ):
            raise ValueError(
                f"stream {stream} is a work queue: consumer {durable!r} would overlap another consumer's subjects"
            )
        if state is None:
            state = _ConsumerState(target, durable, filter_subject, ack_wait_seconds)
            target.consumers[durable] = state
        else:
            state.filter_subject = filter_subject
            state.ack_wait_seconds = ack_wait_seconds
        return _MemoryConsumer(self, state)

    async def subscribe(self, subject: str) -> AsyncIterator[BusMessage]:
        """Yield messages published on `subject` from the first iteration on; ends when the bus closes."""
        self._check_usable()
        subscriber = _Subscriber(subject, self, asyncio.Queue(maxsize=_SUBSCRIBER_QUEUE_SIZE))
        self.broker.add_subscriber(subscriber)
        try:
            while (message := await subscriber.queue.get()) is not None:
                yield message
        finally:
            self.broker.remove_subscriber(subscriber)

    async def ping(self) -> None:
        """Return at once while the bus is open; raise `BusUnavailable` otherwise."""
        self._check_usable()

    async def backlog(self, stream: str) -> StreamBacklog:
        """What `stream` holds now (expired messages dropped first), as `STREAM.INFO` reports it."""
        self._check_usable()
        target = self.broker.stream(stream)
        target.expire(self.broker.clock())
        oldest = next(iter(target.messages.values()), None)
        return StreamBacklog(
            messages=len(target.messages),
            bytes=target.size,
            oldest_stored_at=oldest.stored_at_utc if oldest is not None else None,
            last_sequence=target.last_sequence,
        )

    async def consumer_backlog(self, stream: str, durable: str) -> ConsumerBacklog | None:
        """Where `durable` stands on `stream` (expired messages dropped first), as `CONSUMER.INFO` reports it."""
        self._check_usable()
        target = self.broker.stream(stream)
        target.expire(self.broker.clock())
        state = target.consumers.get(durable)
        if state is None:
            return None
        waiting = [
            stored
            for sequence, stored in target.messages.items()
            if sequence >= state.next_sequence and subject_matches(state.filter_subject, stored.subject)
        ]
        return ConsumerBacklog(
            undelivered=len(waiting),
            oldest_undelivered_at=waiting[0].stored_at_utc if waiting else None,
            delivered_sequence=state.next_sequence - 1,
            unacknowledged=len(state.pending),
        )

    def _check_not_closed(self) -> None:
        if self._closed:
            raise BusUnavailable("the in-memory bus is closed")

    def _check_usable(self) -> None:
        self._check_not_closed()
        if not self._started:
            raise BusUnavailable("the in-memory bus is not started")


class _MemoryConsumer:
    """One handle on a shared durable consumer state."""

    def __init__(self, bus: MemoryEventBus, state: _ConsumerState) -> None:
        self._bus = bus
        self._state = state
        self._closed = False

    async def fetch(self, max_messages: int, timeout_seconds: float) -> list[BusMessage]:
        """Up to `max_messages` messages, as soon as at least one is available, within `timeout_seconds`."""
        broker = self._bus.broker
        loop = asyncio.get_running_loop()
        deadline = broker.clock() + timeout_seconds
        real_deadline = loop.time() + timeout_seconds  # bounds the wait when a test clock stands still
        while True:
            if self._closed:
                raise BusUnavailable(f"consumer {self._state.durable} is closed")
            self._bus._check_usable()  # pyright: ignore[reportPrivateUsage]
            now = broker.clock()
            self._state.stream.expire(now)
            taken = self._state.take(max_messages, now)
            if taken:
                return [_MemoryMessage(broker, self._state, stored, count) for stored, count in taken]
            if now >= deadline or loop.time() >= real_deadline:
                return []
            wake_at = deadline
            next_redelivery = self._state.next_redelivery()
            if next_redelivery is not None:
                wake_at = min(wake_at, next_redelivery)
            await broker.wait_changed(min(wake_at - now, real_deadline - loop.time()))

    async def close(self) -> None:
        """Stop fetching through this handle; its unacked messages are redelivered after their ack wait."""
        self._closed = True


class _MemoryMessage:
    """One delivery of a stored message; settling it twice is a no-op."""

    __slots__ = ("_broker", "_num_delivered", "_settled", "_state", "_stored")

    def __init__(self, broker: MemoryBroker, state: _ConsumerState, stored: _StoredMessage, count: int) -> None:
        self._broker = broker
        self._state = state
        self._stored = stored
        self._num_delivered = count
        self._settled = False

    @property
    def subject(self) -> str:
        return self._stored.subject

    @property
    def data(self) -> bytes:
        return self._stored.data

    @property
    def headers(self) -> dict[str, str]:
        return dict(self._stored.headers)

    @property
    def num_delivered(self) -> int:
        return self._num_delivered

    async def ack(self) -> None:
        self._finish()

    async def term(self) -> None:
        self._finish()

    async def nak(self, delay_seconds: float = 0.0) -> None:
        if self._settled:
            return
        self._settled = True
        pending = self._state.pending.get(self._stored.sequence)
        if pending is not None:
            pending.redeliver_at = self._broker.clock() + max(delay_seconds, 0.0)
            self._broker.notify()

    def _finish(self) -> None:
        if self._settled:
            return
        self._settled = True
        self._state.pending.pop(self._stored.sequence, None)
        if self._state.stream.work_queue:
            self._state.stream.remove(self._stored.sequence)
            self._broker.notify()
