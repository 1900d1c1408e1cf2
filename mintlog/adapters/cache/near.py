"""`NearCache`: this process's copy of hot entries of a shared cache, served only while it is known fresh.

It never talks to Redis itself: `RedisCache` fills it with what it read, and `RedisInvalidations` (the
subscription that Redis tells of every change) drops entries and says when the subscription is live.

Guarantees:
- nothing is served unless the subscription is live AND Redis has confirmed it within `max_silence_seconds`
  (a heartbeat answered in order after every invalidation sent before it), so an entry changed or deleted
  in Redis is never served after its invalidation arrived, and never served at all while the subscription
  is down, starting, or silent (a network partition): reads then go to Redis;
- going live or down clears every entry (changes made while the subscription was down were not heard);
- a value read from Redis is stored only if no invalidation arrived while it was being read (`generation`),
  so a read racing a delete cannot put the deleted value back;
- entries live at most `max_ttl_seconds` and never past the TTL Redis reported; at most `max_entries`,
  least recently used evicted first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["NearCache"]


class NearCache:
    """A bounded LRU of values read from Redis, gated by the liveness of the invalidation subscription."""

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_ttl_seconds: float = 60.0,
        max_silence_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._max_ttl_seconds = max_ttl_seconds
        self._max_silence_seconds = max_silence_seconds
        self._clock = clock
        self._live = False
        self._confirmed_at = float("-inf")
        self._generation = 0
        self.hits = 0

    def __len__(self) -> int:
        """Entries held (expired ones included until they are met)."""
        return len(self._entries)

    @property
    def generation(self) -> int:
        """Changes with every invalidation; read it before a Redis read and pass it to `put`."""
        return self._generation

    @property
    def serving(self) -> bool:
        """True while entries may be served: subscription live and confirmed within `max_silence_seconds`."""
        return self._live and self._clock() - self._confirmed_at <= self._max_silence_seconds

    def get(self, key: str) -> bytes | None:
        """The entry, or None when absent, expired, or when the near cache is not serving."""
        if not self._entries or not self.serving:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: bytes, ttl_seconds: float, generation: int) -> None:
        """Keep `value`, read from Redis while `generation` was current, for at most `ttl_seconds`.

        Ignored when the subscription is down or an invalidation arrived since `generation` was read.
        """
        if not self._live or generation != self._generation:
            return
        ttl_seconds = min(ttl_seconds, self._max_ttl_seconds)
        if ttl_seconds <= 0:
            return
        self._entries[key] = (self._clock() + ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        """Drop `key` (changed or deleted in Redis, or about to be)."""
        self._generation += 1
        self._entries.pop(key, None)

    def discard_all(self) -> None:
        """Drop every entry (Redis was flushed)."""
        self._generation += 1
        self._entries.clear()

    def went_live(self, confirmed_at: float) -> None:
        """The subscription is live: every change made in Redis after `confirmed_at` will be heard."""
        self.discard_all()
        self._live = True
        self._confirmed_at = confirmed_at

    def confirmed(self, sent_at: float) -> None:
        """Redis answered a heartbeat sent at `sent_at`: every invalidation sent before it has arrived."""
        self._confirmed_at = max(self._confirmed_at, sent_at)

    def went_down(self) -> None:
        """The subscription is lost: stop serving and forget everything (changes may go unheard)."""
        self._live = False
        self.discard_all()
