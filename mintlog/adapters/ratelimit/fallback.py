"""`FallbackRateLimiter`: the shared limiter when it answers, a local one when it does not.

Guarantees: `acquire` never raises `DependencyUnavailable`, so a Redis outage never turns into a 500, a
503 or a 429 of its own, and never into "unlimited": the local limiter keeps limiting. While on the
fallback each instance limits on its own, so with N instances a key can get up to N times its limit.
After a failure the primary is left alone for `retry_after_seconds` (a hung Redis costs one timeout per
interval, not one per request). The switch and the return are logged once each, and every local
decision is counted (`mintlog_ratelimit_fallbacks`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from mintlog.domain.ratelimit import RateDecision
from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.ratelimit import RateLimiter

__all__ = ["FallbackRateLimiter"]

logger = logging.getLogger(__name__)


class FallbackRateLimiter:
    """Asks `primary`; when it is unavailable, asks `fallback` (a `MemoryRateLimiter`) instead."""

    def __init__(
        self,
        primary: RateLimiter,
        fallback: RateLimiter,
        *,
        metrics: Metrics | None = None,
        retry_after_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._fallbacks = metrics.ratelimit_fallbacks if metrics is not None else None
        self._retry_after_seconds = retry_after_seconds
        self._clock = clock
        self._primary_down_until = 0.0
        self._on_fallback = False

    @property
    def on_fallback(self) -> bool:
        """True while decisions are taken locally because the primary failed."""
        return self._on_fallback

    async def acquire(self, key: str, *, rate_per_second: float, burst: float, cost: float = 1) -> RateDecision:
        """The primary's decision, or the local one when the primary cannot answer; never unavailable."""
        if self._clock() >= self._primary_down_until:
            try:
                decision = await self._primary.acquire(key, rate_per_second=rate_per_second, burst=burst, cost=cost)
            except DependencyUnavailable as exc:
                self._primary_down_until = self._clock() + self._retry_after_seconds
                if not self._on_fallback:
                    self._on_fallback = True
                    logger.warning("shared rate limiter unavailable, limiting in this process instead: %s", exc)
            else:
                if self._on_fallback:
                    self._on_fallback = False
                    logger.warning("shared rate limiter available again; local limiting ends")
                return decision
        if self._fallbacks is not None:
            self._fallbacks.inc()
        return await self._fallback.acquire(key, rate_per_second=rate_per_second, burst=burst, cost=cost)

    async def close(self) -> None:
        """Close both limiters (the fallback even if closing the primary fails)."""
        try:
            await self._primary.close()
        finally:
            with contextlib.suppress(Exception):
                await self._fallback.close()
