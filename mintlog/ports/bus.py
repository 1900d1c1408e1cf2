"""The event bus port: durable streams with at-least-once consumers (NATS JetStream semantics)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "SMALL_STREAM_MAX_BYTES",
    "STREAMS",
    "BusConsumer",
    "BusMessage",
    "EventBus",
    "PublishAck",
    "StreamSpec",
    "total_stream_bytes",
]


SMALL_STREAM_MAX_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream the bus creates (or updates) at start.

    A `bulk` stream carries log volume and gets the configured size limit; the others carry little and are
    capped at `SMALL_STREAM_MAX_BYTES` (or the configured limit, if smaller).

    A `work_queue` stream deletes a message once its consumer acked it (JetStream work-queue retention),
    so the space of consumed messages is freed at once: with limits retention a full `LOGS_PARSED` would
    keep refusing the pipeline until old messages age out, stalling indexing for up to `max_age`. Such a
    stream allows one consumer per subject (the pipeline's, shared by all its instances); live subscribers
    (tail) are not consumers and are unaffected. Messages published before a consumer exists are kept.
    """

    name: str
    subjects: tuple[str, ...]
    bulk: bool = False
    work_queue: bool = False

    def max_bytes(self, configured: int) -> int:
        """This stream's size limit given `MINTLOG_NATS__STREAM_MAX_BYTES`."""
        return configured if self.bulk else min(configured, SMALL_STREAM_MAX_BYTES)


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("LOGS_RAW", ("logs.raw.>",), bulk=True, work_queue=True),
    StreamSpec("LOGS_PARSED", ("logs.parsed.>",), bulk=True, work_queue=True),
    StreamSpec("ALERTS_EVENTS", ("alerts.events.>",)),
    StreamSpec("INCIDENTS_EVENTS", ("incidents.events.>",)),
    # Messages that failed too often, with the reason in the `Mintlog-Dead-Reason` header.
    StreamSpec("DEAD_LETTERS", ("deadletter.>",)),
)


def total_stream_bytes(configured: int) -> int:
    """What all streams may hold together: the storage a JetStream server must allow."""
    return sum(spec.max_bytes(configured) for spec in STREAMS)


@dataclass(frozen=True, slots=True)
class PublishAck:
    """The bus's acknowledgement of a publish. `duplicate` is true when the msg id was seen in the window."""

    stream: str
    sequence: int
    duplicate: bool = False


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
        """Connect and create or update every stream in `STREAMS` (idempotent)."""
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

    @property
    def max_payload_bytes(self) -> int:
        """The largest payload one publish may carry."""
        ...
