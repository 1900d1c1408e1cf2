"""The rate-limiter port: token buckets, shared by every instance in production (Redis), local when embedded.

Semantics are those of `mintlog.domain.ratelimit`: bucket `key` holds at most `burst` tokens, gains
`rate_per_second` per second, starts full, and a request costs `cost` tokens (1 per request, the event count
for an ingest quota). Callers pass the rate and burst on every call, so a changed limit takes effect at once.
"""

from __future__ import annotations

from typing import Protocol

from mintlog.domain.ratelimit import RateDecision

__all__ = ["RateDecision", "RateLimiter"]


class RateLimiter(Protocol):
    """Token buckets keyed by name. Atomic: concurrent callers together never take more than a bucket holds."""

    async def acquire(self, key: str, *, rate_per_second: float, burst: float, cost: float = 1) -> RateDecision:
        """Take `cost` tokens from bucket `key` if it holds them; a refused request takes nothing.

        `rate_per_second` and `burst` must be positive. Raises `DependencyUnavailable` when the limiter's
        store cannot answer (`FallbackRateLimiter` turns that into a local decision).
        """
        ...

    async def close(self) -> None:
        """Release connections and memory."""
        ...
