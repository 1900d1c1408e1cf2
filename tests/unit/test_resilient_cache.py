"""`ResilientCache`: a failing cache is an empty one, a lost delete is replayed, failures are logged sparingly."""

from __future__ import annotations

import logging

import pytest

from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.cache.resilient import ResilientCache
from mintlog.errors import CacheUnavailable
from mintlog.metrics import Metrics
from tests.fakes import FakeClock as Clock


class FlakyCache:
    """A memory cache that raises `CacheUnavailable` on every operation while `down` is set."""

    def __init__(self) -> None:
        self.data = MemoryCache()
        self.down = False
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        self._check()
        return await self.data.get(key)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._check()
        await self.data.set(key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        self._check()
        await self.data.delete(key)

    async def close(self) -> None:
        await self.data.close()

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise CacheUnavailable("redis down")


async def test_failures_are_misses_and_no_ops_and_are_counted() -> None:
    inner, clock, metrics = FlakyCache(), Clock(), Metrics()
    cache = ResilientCache(inner, metrics=metrics, clock=clock)
    await cache.set("k", b"v", 60)
    inner.down = True
    assert await cache.get("k") is None
    await cache.set("k2", b"v", 60)
    assert metrics.registry.get_sample_value("mintlog_cache_errors_total", {"op": "get"}) == 1
    inner.down = False
    clock.now += 2
    assert await cache.get("k") == b"v"
    assert not cache.degraded


async def test_the_inner_cache_is_left_alone_during_the_back_off() -> None:
    inner, clock = FlakyCache(), Clock()
    cache = ResilientCache(inner, retry_after_seconds=1.0, clock=clock)
    inner.down = True
    for _ in range(50):
        assert await cache.get("k") is None
    assert inner.calls == 1
    clock.now += 1.0
    await cache.get("k")
    assert inner.calls == 2


async def test_a_delete_lost_while_the_cache_was_down_is_replayed_before_the_next_read() -> None:
    """A key revoked during a Redis outage must not come back from the cache when Redis does."""
    inner, clock = FlakyCache(), Clock()
    cache = ResilientCache(inner, clock=clock)
    await cache.set("apikey:h", b"principal", 300)
    inner.down = True
    await cache.delete("apikey:h")
    inner.down = False
    assert await cache.get("apikey:h") is None, "still in back-off: a miss"
    clock.now += 2
    assert await cache.get("apikey:h") is None, "the delete was replayed before reading"
    assert await inner.data.get("apikey:h") is None


async def test_an_outage_is_logged_once_then_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    inner, clock = FlakyCache(), Clock()
    cache = ResilientCache(inner, retry_after_seconds=0, log_interval_seconds=60, clock=clock)
    inner.down = True
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            clock.now += 0.1
            await cache.get("k")
        inner.down = False
        await cache.get("k")
    messages = [record.getMessage() for record in caplog.records]
    assert sum("cache unavailable" in m for m in messages) == 1
    assert sum("cache available again" in m for m in messages) == 1
