"""The `Cache` contract, over the in-process cache, Redis, and Redis behind `ResilientCache`.

Plus what only a shared cache promises (a delete through one instance is seen by every other) and what the
resilient wrapper promises when Redis is unreachable (misses and no-ops, never an error).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable

import pytest

from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.cache.redis import RedisCache
from mintlog.adapters.cache.resilient import ResilientCache
from mintlog.errors import CacheUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.cache import Cache
from tests.services import UNREACHABLE_REDIS_URL, delete_redis_keys


@pytest.fixture(params=["memory", "redis", "resilient-redis"])
async def open_cache(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Cache]]:
    """Opens caches of one kind; every cache opened by a test shares its data (same Redis prefix)."""
    kind: str = request.param
    prefix = f"test-cache-{secrets.token_hex(6)}:"
    redis_url = request.getfixturevalue("redis_url") if kind != "memory" else ""
    opened: list[Cache] = []
    shared_memory = MemoryCache()

    def open_one() -> Cache:
        cache: Cache
        if kind == "memory":
            cache = shared_memory
        elif kind == "redis":
            cache = RedisCache(redis_url, timeout_seconds=2.0, key_prefix=prefix)
        else:
            cache = ResilientCache(RedisCache(redis_url, timeout_seconds=2.0, key_prefix=prefix))
        opened.append(cache)
        return cache

    yield open_one
    for cache in opened:
        await cache.close()
    if redis_url:
        await delete_redis_keys(redis_url, prefix)


@pytest.fixture
def cache(open_cache: Callable[[], Cache]) -> Cache:
    return open_cache()


async def test_an_absent_key_is_a_miss(cache: Cache) -> None:
    assert await cache.get("nothing-here") is None


async def test_a_value_comes_back_byte_for_byte(cache: Cache) -> None:
    value = bytes(range(256)) * 4
    await cache.set("binary", value, 60)
    assert await cache.get("binary") == value


async def test_set_replaces_the_value(cache: Cache) -> None:
    await cache.set("k", b"first", 60)
    await cache.set("k", b"second", 60)
    assert await cache.get("k") == b"second"


async def test_keys_are_independent(cache: Cache) -> None:
    await cache.set("a", b"1", 60)
    await cache.set("b", b"2", 60)
    await cache.delete("a")
    assert await cache.get("a") is None
    assert await cache.get("b") == b"2"


async def test_an_entry_expires_after_its_ttl(cache: Cache) -> None:
    await cache.set("short", b"x", 0.15)
    await cache.set("long", b"y", 60)
    assert await cache.get("short") == b"x"
    await asyncio.sleep(0.3)
    assert await cache.get("short") is None
    assert await cache.get("long") == b"y"


async def test_delete_forgets_now_and_deleting_an_absent_key_is_fine(cache: Cache) -> None:
    await cache.set("revoked", b"principal", 300)
    await cache.delete("revoked")
    assert await cache.get("revoked") is None
    await cache.delete("never-set")


async def test_a_delete_through_one_instance_is_seen_by_every_other(open_cache: Callable[[], Cache]) -> None:
    """Revocation: the entry deleted by the instance that revoked the key is gone for all of them."""
    first, second = open_cache(), open_cache()
    await first.set("apikey:abc", b"principal", 300)
    assert await second.get("apikey:abc") == b"principal"
    await first.delete("apikey:abc")
    assert await second.get("apikey:abc") is None


async def test_redis_errors_are_translated() -> None:
    cache = RedisCache(UNREACHABLE_REDIS_URL, timeout_seconds=0.5)
    try:
        with pytest.raises(CacheUnavailable):
            await cache.get("k")
        with pytest.raises(CacheUnavailable):
            await cache.set("k", b"v", 1)
        with pytest.raises(CacheUnavailable):
            await cache.delete("k")
    finally:
        await cache.close()


async def test_an_unreachable_redis_behind_the_resilient_cache_is_an_empty_cache() -> None:
    metrics = Metrics()
    cache = ResilientCache(RedisCache(UNREACHABLE_REDIS_URL, timeout_seconds=0.5), metrics=metrics)
    started = time.monotonic()
    try:
        for _ in range(100):
            await cache.set("k", b"v", 60)
            assert await cache.get("k") is None
            await cache.delete("k")
    finally:
        await cache.close()
    assert time.monotonic() - started < 2.0
    assert cache.degraded
    failures = metrics.registry.get_sample_value("mintlog_cache_errors_total", {"op": "set"})
    assert failures is not None
    assert failures >= 1
