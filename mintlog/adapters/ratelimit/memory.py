"""`MemoryRateLimiter`: token buckets in this process, for the embedded setup and as Redis's fallback.

Limits are per process: with N instances each one grants a key its full limit.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from mintlog.domain.ratelimit import RateDecision, can_take, decide, refill, seconds_until_full

__all__ = ["MemoryRateLimiter"]

logger = logging.getLogger(__name__)

_OVERFLOW_LOG_INTERVAL_SECONDS = 60.0


class MemoryRateLimiter:
    """The `RateLimiter` port in a dict. Atomic because a decision never awaits.

    Memory is bounded: a full bucket is not stored at all (it equals a new one), buckets that have filled
    up while idle are dropped as they are met in least-recently-used order, and past `max_buckets` the
    least recently used bucket is dropped even if not full (that key gets a fresh burst).
    """

    def __init__(self, *, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        # key -> (tokens, updated_at, full_at), least recently used first
        self._buckets: OrderedDict[str, tuple[float, float, float]] = OrderedDict()
        self._max_buckets = max_buckets
        self._clock = clock
        self._overflow_logged_at = float("-inf")

    def __len__(self) -> int:
        """Buckets held in memory (for tests of the memory bound)."""
        return len(self._buckets)

    async def acquire(self, key: str, *, rate_per_second: float, burst: float, cost: float = 1) -> RateDecision:
        """Take `cost` tokens from bucket `key` if it holds them; never raises for a positive rate and burst."""
        if rate_per_second <= 0 or burst <= 0:
            raise ValueError(f"rate_per_second and burst must be positive, got {rate_per_second} and {burst}")
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket[2]:
            tokens = burst
        else:
            tokens = refill(bucket[0], now - bucket[1], rate_per_second=rate_per_second, burst=burst)
        allowed = can_take(tokens, cost)
        decision = decide(tokens, allowed=allowed, rate_per_second=rate_per_second, burst=burst, cost=cost)
        tokens_after = tokens - cost if allowed else tokens
        if decision.reset_seconds <= 0:
            self._buckets.pop(key, None)
        else:
            full_at = now + seconds_until_full(tokens_after, rate_per_second=rate_per_second, burst=burst)
            self._buckets[key] = (tokens_after, now, full_at)
            self._buckets.move_to_end(key)
            self._evict(now)
        return decision

    def _evict(self, now: float) -> None:
        while self._buckets:
            oldest_key, (_tokens, _updated_at, full_at) = next(iter(self._buckets.items()))
            if full_at > now and len(self._buckets) <= self._max_buckets:
                return
            if full_at > now and now - self._overflow_logged_at >= _OVERFLOW_LOG_INTERVAL_SECONDS:
                self._overflow_logged_at = now
                logger.warning("more than %d rate-limit buckets; the least recently used are reset", self._max_buckets)
            del self._buckets[oldest_key]

    async def close(self) -> None:
        """Forget every bucket."""
        self._buckets.clear()
