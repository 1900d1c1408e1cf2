"""The event bus port: durable streams with at-least-once consumers (NATS JetStream semantics).

Which streams exist, their subjects and what their messages are: `mintlog.domain.streams`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = [
    "BusConsumer",
    "BusMessage",
    "ConsumerBacklog",
    "EventBus",
    "PublishAck",
    "StreamBacklog",
]


@dataclass(frozen=True, slots=True)
class PublishAck:
    """The bus's acknowledgement of a publish. `duplicate` is true when the msg id was seen in the window."""

    stream: str
    sequence: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class StreamBacklog:
    """What a stream holds now. On a work-queue stream (`LOGS_RAW`, `LOGS_PARSED`) that is exactly what its
    consumer has not acked yet, delivered or not: the backlog of the stage that reads it."""

    messages: int
    bytes: int
    oldest_stored_at: datetime | None
    """When the oldest message it holds was stored (UTC, by the bus's clock); None when it holds none."""
    last_sequence: int = 0
    """The sequence of the last message ever stored: between two reads, stored minus held is what left."""


@dataclass(frozen=True, slots=True)
class ConsumerBacklog:
    """Where one durable consumer of a stream stands: what it has not been handed yet, and what it was handed
    but has not acked. Only the first is work the consumer still has to start; the second is work in progress
    (or, for the normalizer with the archive on, batches already passed on and waiting in archive buffers)."""

    undelivered: int
    """Messages of the consumer's subjects stored after the last one delivered to it."""
    oldest_undelivered_at: datetime | None
    """When the first of them was stored (UTC, by the bus's clock); None when there is none."""
    delivered_sequence: int
    """The stream sequence of the last message delivered to the consumer: between two reads, how far it moved
    is what the consumer took."""
    unacknowledged: int
    """Delivered, not acked yet (in progress, or waiting for a redelivery)."""


class BusMessage(Protocol):
    """A message delivered by a consumer. Exactly one of ack/nak/term must be awaited per delivery."""

    @property
    def subject(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def headers(self) -> dict[str, str]: ...

    @property
    def num_delivered(self) -> int:
        """1 on the first delivery, 2 on the first redelivery, and so on."""
        ...

    async def ack(self) -> None:
        """Mark the message done. Sent without waiting for a confirmation; an ack lost with the connection
        only causes a redelivery (at-least-once)."""
        ...

    async def nak(self, delay_seconds: float = 0.0) -> None:
        """Ask for redelivery after `delay_seconds`."""
        ...

    async def term(self) -> None:
        """Stop redelivering this message (after it was dead-lettered)."""
        ...


class BusConsumer(Protocol):
    """A durable pull consumer; instances with the same durable name split the work."""

    async def fetch(self, max_messages: int, timeout_seconds: float) -> list[BusMessage]:
        """Up to `max_messages` messages, waiting at most `timeout_seconds`; an empty list on timeout.

        Raises `BusUnavailable` when the bus cannot be reached.
        """
        ...

    async def close(self) -> None:
        """Stop fetching; unacked messages are redelivered after their ack wait."""
        ...


class EventBus(Protocol):
    """Durable, at-least-once messaging between roles."""

    async def start(self) -> None:
        """Connect and create or update every stream in `mintlog.domain.streams.STREAMS` (idempotent)."""
        ...

    async def close(self) -> None:
        """Drain and disconnect."""
        ...

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> PublishAck:
        """Store `payload` durably; returns only after the stream acknowledged it.

        A repeated `msg_id` inside the duplicate window is acknowledged with `duplicate=True` and not stored
        twice. Raises `BusFull` when the stream refuses new messages, `PayloadTooLarge` when `payload`
        exceeds `max_payload_bytes`, and `BusUnavailable` otherwise.
        """
        ...

    async def consumer(self, stream: str, durable: str, *, filter_subject: str, ack_wait_seconds: float) -> BusConsumer:
        """Create or bind a durable pull consumer (idempotent).

        Unacked messages are redelivered after `ack_wait_seconds`, without a delivery limit: the caller
        dead-letters a message itself once `num_delivered` passes its threshold, so nothing is dropped silently.
        """
        ...

    def subscribe(self, subject: str) -> AsyncIterator[BusMessage]:
        """Live, non-durable delivery of new messages on `subject` (wildcards allowed), e.g. for tail.

        The subscription starts at the first iteration; delivery is at-most-once.
        """
        ...

    async def ping(self) -> None:
        """Return when the bus answers; raise `BusUnavailable` otherwise."""
        ...

    async def backlog(self, stream: str) -> StreamBacklog:
        """How many messages `stream` holds, their size and when the oldest was stored: one round trip, no side
        effect, cheap enough to ask every second. Raises `BusUnavailable` when the bus cannot answer or the
        stream does not exist."""
        ...

    async def consumer_backlog(self, stream: str, durable: str) -> ConsumerBacklog | None:
        """Where the durable consumer `durable` of `stream` stands, or None when it does not exist (yet): at most
        two round trips, no side effect, cheap enough to ask every second. Raises `BusUnavailable` when the bus
        cannot answer or the stream does not exist."""
        ...

    @property
    def max_payload_bytes(self) -> int:
        """The largest payload one publish may carry."""
        ...
