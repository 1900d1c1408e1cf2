"""The `Cache` contract, over the in-process cache, Redis, and Redis behind `ResilientCache`, each Redis
variant with and without its near cache (entries kept in process, invalidated by Redis).

Plus what only a shared cache promises (a delete through one instance is seen by every other: at once
without a near cache, within the pub/sub delivery with one) and what the resilient wrapper promises when
Redis is unreachable (misses and no-ops, never an error).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.cache.near import NearCache
from mintlog.adapters.cache.redis import RedisCache
from mintlog.adapters.cache.resilient import ResilientCache
from mintlog.errors import CacheUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.cache import Cache
from tests.services import UNREACHABLE_REDIS_URL, delete_redis_keys


class CacheOpener:
    """Opens caches of one kind; every cache opened by a test shares its data (same Redis prefix)."""

    def __init__(self, kind: str, redis_url: str, prefix: str) -> None:
        self.kind = kind
        self._redis_url = redis_url
        self._prefix = prefix
        self._shared_memory = MemoryCache()
        self.opened: list[Cache] = []
        self._near: dict[int, NearCache] = {}

    def __call__(self) -> Cache:
        cache: Cache
        if self.kind == "memory":
            cache = self._shared_memory
        else:
            redis = RedisCache(
                self._redis_url,
                timeout_seconds=2.0,
                key_prefix=self._prefix,
                near_cache_entries=100 if self.kind.endswith("-near") else 0,
            )
            cache = ResilientCache(redis) if self.kind.startswith("resilient-") else redis
            if redis.near_cache is not None:
                self._near[id(cache)] = redis.near_cache
        self.opened.append(cache)
        return cache

    def near_cache(self, cache: Cache) -> NearCache | None:
        """The near cache of a cache opened here, if it has one."""
        return self._near.get(id(cache))


@pytest.fixture(params=["memory", "redis", "resilient-redis", "redis-near", "resilient-redis-near"])
async def open_cache(request: pytest.FixtureRequest) -> AsyncIterator[CacheOpener]:
    kind: str = request.param
    prefix = f"test-cache-{secrets.token_hex(6)}:"
    redis_url = request.getfixturevalue("redis_url") if kind != "memory" else ""
    opener = CacheOpener(kind, redis_url, prefix)
    yield opener
    for cache in opener.opened:
        await cache.close()
    if redis_url:
        await delete_redis_keys(redis_url, prefix)


@pytest.fixture
def cache(open_cache: CacheOpener) -> Cache:
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


async def test_a_delete_through_one_instance_is_seen_by_every_other(open_cache: CacheOpener) -> None:
    """Revocation: the entry deleted by the instance that revoked the key is gone for all of them: at once,
    or, where the second instance serves it from its near cache, within 200 ms (the pub/sub delivery)."""
    first, second = open_cache(), open_cache()
    await first.set("apikey:abc", b"principal", 300)
    assert await second.get("apikey:abc") == b"principal"
    near = open_cache.near_cache(second)
    if near is not None:
        await served_from_memory(second, near, "apikey:abc")
    await first.delete("apikey:abc")
    if near is None:
        assert await second.get("apikey:abc") is None
    else:
        deadline = time.monotonic() + 0.2
        while await second.get("apikey:abc") is not None:
            assert time.monotonic() < deadline, "the delete did not reach the other instance within 200 ms"
            await asyncio.sleep(0.005)


async def served_from_memory(cache: Cache, near: NearCache, key: str) -> None:
    """Waits until `cache` serves `key` from its near cache (its subscription is live and it read the key)."""
    deadline = time.monotonic() + 5
    while True:
        hits = near.hits
        assert await cache.get(key) is not None
        if near.hits > hits:
            return
        assert time.monotonic() < deadline, "the near cache never served"
        await asyncio.sleep(0.01)


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
