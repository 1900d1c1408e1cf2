"""`ConsumerLoop`: the fetch loop shared by every bus worker (pipeline, notify), with a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable

from mintlog.errors import BusUnavailable
from mintlog.ports.bus import BusConsumer, BusMessage, EventBus

__all__ = ["PULL_MAX_BYTES", "ConsumerLoop"]

logger = logging.getLogger(__name__)

_FETCH_TIMEOUT_SECONDS = 1.0
_RETRY_SECONDS = 1.0
PULL_MAX_BYTES = 16 * 1024 * 1024
"""About the most one pull brings in: well under the 64 MiB that nats-server lets wait for one client before it
drops the connection as a slow consumer (every message of that pull then waits out its ack wait before it is
delivered again)."""


class ConsumerLoop:
    """Fetches from one durable consumer and hands each fetched list to `handle`.

    `stop()` lets the list being handled finish (so its messages are acked or nak'ed), waiting at most
    `grace_seconds`, then closes the consumer; anything unacked is redelivered by the bus.

    A pull asks for at most `fetch_batch` messages and for about `pull_bytes` (by the size of the messages of
    recent pulls; before the first, by the largest message the bus carries), so a backlog of large batches
    comes in a few at a time instead of `fetch_batch` times the largest at once.
    """

    def __init__(
        self,
        *,
        name: str,
        bus: EventBus,
        stream: str,
        durable: str,
        filter_subject: str,
        ack_wait_seconds: float,
        fetch_batch: int,
        handle: Callable[[list[BusMessage]], Awaitable[None]],
        fetch_timeout_seconds: Callable[[], float] = lambda: _FETCH_TIMEOUT_SECONDS,
        on_idle: Callable[[], Awaitable[None]] | None = None,
        pull_bytes: int = PULL_MAX_BYTES,
    ) -> None:
        self.name = name
        self._bus = bus
        self._stream = stream
        self._durable = durable
        self._filter_subject = filter_subject
        self._ack_wait_seconds = ack_wait_seconds
        self._fetch_batch = fetch_batch
        self._handle = handle
        self._fetch_timeout_seconds = fetch_timeout_seconds
        self._on_idle = on_idle
        self._pull_bytes = max(1, pull_bytes)
        self._message_bytes = float(max(1, bus.max_payload_bytes))  # until a pull shows how large they are
        self._sized = False
        self._consumer: BusConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._consumer = await self._bus.consumer(
            self._stream,
            self._durable,
            filter_subject=self._filter_subject,
            ack_wait_seconds=self._ack_wait_seconds,
        )
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def _run(self) -> None:
        assert self._consumer is not None
        while not self._stopping.is_set():
            try:
                messages = await self._consumer.fetch(self._next_fetch_size(), self._fetch_timeout_seconds())
            except BusUnavailable as exc:
                logger.warning("%s cannot fetch: %s; retrying", self.name, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _RETRY_SECONDS)
                continue
            if messages:
                self._observe_sizes(messages)
                try:
                    await self._handle(messages)
                except Exception:
                    logger.exception(
                        "%s failed to handle %d messages; they will be redelivered", self.name, len(messages)
                    )
            elif self._on_idle is not None:
                await self._on_idle()
        if self._on_idle is not None:
            await self._on_idle()

    def _next_fetch_size(self) -> int:
        """At most `fetch_batch` messages, and about `pull_bytes` of them."""
        return max(1, min(self._fetch_batch, math.ceil(self._pull_bytes / self._message_bytes)))

    def _observe_sizes(self, messages: list[BusMessage]) -> None:
        """Move the expected message size halfway to the mean of this pull (at once after the first pull)."""
        mean = max(1.0, sum(len(message.data) for message in messages) / len(messages))
        self._message_bytes = (self._message_bytes + mean) / 2 if self._sized else mean
        self._sized = True

    async def stop(self, grace_seconds: float) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
            except TimeoutError:
                logger.warning(
                    "%s did not finish within %.1fs; unacked work will be redelivered",
                    self.name,
                    grace_seconds,
                )
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
