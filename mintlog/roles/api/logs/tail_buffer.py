"""`TailBuffer`: the bounded queue between a tail's bus subscriber and its (possibly slow) HTTP client.

The subscriber side never waits: `offer` either queues an event or skips it and counts it. The client side
takes events in arrival order; where events were skipped it gets one `Dropped` marker saying how many, placed
exactly at the gap (after the events queued before the skip, before those queued after it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass

from mintlog.domain.events import LogEvent

__all__ = ["Dropped", "TailBuffer"]


@dataclass(frozen=True, slots=True)
class Dropped:
    """`count` live events were skipped at this point of the stream because the buffer was full."""

    count: int


class TailBuffer:
    """A FIFO of at most `capacity` events; a full buffer skips new events and counts them.

    Guarantees: `offer` never blocks and never holds more than `capacity` events (the `Dropped` markers
    between them are bounded by the same number); `take` returns items in the order they were offered, with
    a `Dropped` at each gap; after `close`, offers are ignored and `take` drains what is left, then returns
    None for good; after `discard`, `take` returns None at once.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a tail buffer holds at least one event, not {capacity}")
        self._capacity = capacity
        self._items: deque[LogEvent | Dropped] = deque()
        self._events = 0
        self._skipped = 0  # skipped since the last marker was queued
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def offer(self, event: LogEvent) -> bool:
        """Queue `event`; False when it was skipped (buffer full, counted for the next `Dropped`) or closed."""
        if self._closed:
            return False
        if self._events >= self._capacity:
            self._skipped += 1
            return False
        if self._skipped:
            self._items.append(Dropped(self._skipped))
            self._skipped = 0
        self._items.append(event)
        self._events += 1
        self._ready.set()
        return True

    def take(self) -> LogEvent | Dropped | None:
        """The next item, or None when nothing is waiting. Skips still being counted come out last."""
        if self._items:
            item = self._items.popleft()
            if isinstance(item, LogEvent):
                self._events -= 1
            return item
        self._ready.clear()
        if self._skipped:
            dropped = Dropped(self._skipped)
            self._skipped = 0
            return dropped
        return None

    async def wait(self, timeout_seconds: float) -> bool:
        """Wait until an item can be taken or the buffer is closed: True then, False after the timeout."""
        if self._items or self._skipped or self._closed:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_seconds)
            return True
        return False

    def close(self) -> None:
        """Refuse further events and wake a waiting `wait` (idempotent)."""
        self._closed = True
        self._ready.set()

    def discard(self) -> None:
        """Close and forget everything queued: `take` returns None from now on (the stream must end now)."""
        self._items.clear()
        self._events = 0
        self._skipped = 0
        self.close()
