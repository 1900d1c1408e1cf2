"""`ResilientCache`: a cache that never fails its caller; an unreachable cache behaves like an empty one.

Guarantees:
- `get`, `set` and `delete` never raise `DependencyUnavailable`: a failed `get` is a miss, a failed `set`
  is a no-op, so the API-key lookup falls back to the database and a valid key never gets a 401 because
  Redis is down;
- after a failure the inner cache is left alone for `retry_after_seconds` (a hung Redis costs one
  timeout per interval, not one per request), then tried again;
- a `delete` that could not reach the cache (a revoked key) is remembered and replayed before this
  instance reads or writes the cache again, so this instance never serves the stale entry. Other instances
  could serve it if Redis comes back before this instance talks to it again; at most until the entry's TTL;
- failures are counted (`mintlog_cache_errors`) and logged at most once per `log_interval_seconds`, plus
  once when the cache answers again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.cache import Cache

__all__ = ["ResilientCache"]

logger = logging.getLogger(__name__)


class ResilientCache:
    """Wraps a `Cache` that may fail (Redis) into one that only ever misses."""

    def __init__(
        self,
        inner: Cache,
        *,
        metrics: Metrics | None = None,
        retry_after_seconds: float = 1.0,
        log_interval_seconds: float = 60.0,
        max_pending_deletes: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._errors = metrics.cache_errors if metrics is not None else None
        self._retry_after_seconds = retry_after_seconds
        self._log_interval_seconds = log_interval_seconds
        self._max_pending_deletes = max_pending_deletes
        self._clock = clock
        self._down_until = 0.0
        self._degraded = False
        self._last_logged = 0.0
        self._unlogged_failures = 0
        self._pending_deletes: dict[str, None] = {}

    @property
    def degraded(self) -> bool:
        """True while the inner cache is considered unavailable (its last operation failed)."""
        return self._degraded

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent, expired or the cache cannot answer."""
        if not await self._ready():
            return None
        try:
            value = await self._inner.get(key)
        except DependencyUnavailable as exc:
            self._failed("get", exc)
            return None
        self._recovered()
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store `value` for `ttl_seconds`, or do nothing when the cache cannot answer."""
        if not await self._ready():
            return
        try:
            await self._inner.set(key, value, ttl_seconds)
        except DependencyUnavailable as exc:
            self._failed("set", exc)
            return
        self._recovered()

    async def delete(self, key: str) -> None:
        """Forget `key` now; when the cache cannot answer, forget it before this instance uses the cache again."""
        if not await self._ready():
            self._remember_delete(key)
            return
        try:
            await self._inner.delete(key)
        except DependencyUnavailable as exc:
            self._failed("delete", exc)
            self._remember_delete(key)
            return
        self._recovered()

    async def close(self) -> None:
        """Replay pending deletes once if the cache answers, then close it."""
        await self._ready()
        await self._inner.close()

    async def _ready(self) -> bool:
        """False during the back-off after a failure, or when pending deletes cannot be replayed."""
        if self._clock() < self._down_until:
            return False
        for key in list(self._pending_deletes):
            try:
                await self._inner.delete(key)
            except DependencyUnavailable as exc:
                self._failed("delete", exc)
                return False
            self._pending_deletes.pop(key, None)
        return True

    def _remember_delete(self, key: str) -> None:
        self._pending_deletes[key] = None
        if len(self._pending_deletes) > self._max_pending_deletes:
            dropped = next(iter(self._pending_deletes))
            del self._pending_deletes[dropped]
            logger.error("too many cache deletes pending while the cache is down; one is dropped and may be stale")

    def _failed(self, operation: str, exc: DependencyUnavailable) -> None:
        now = self._clock()
        self._down_until = now + self._retry_after_seconds
        if self._errors is not None:
            self._errors.labels(operation).inc()
        self._unlogged_failures += 1
        if not self._degraded:
            self._degraded = True
            logger.warning("cache unavailable, serving misses (API keys are read from the database): %s", exc)
        elif now - self._last_logged >= self._log_interval_seconds:
            logger.warning(
                "cache still unavailable, %d failures since the last report: %s", self._unlogged_failures, exc
            )
        else:
            return
        self._last_logged = now
        self._unlogged_failures = 0

    def _recovered(self) -> None:
        if self._degraded:
            self._degraded = False
            logger.warning("cache available again")
