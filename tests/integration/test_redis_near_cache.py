"""The Redis cache's near cache on a real Redis: a change anywhere reaches every instance's memory within
the pub/sub delivery, and an instance whose subscription is down reads Redis instead of its memory."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from mintlog.adapters.cache.near import NearCache
from mintlog.adapters.cache.redis import RedisCache
from mintlog.adapters.cache.resilient import ResilientCache
from mintlog.errors import CacheUnavailable
from tests.services import UNREACHABLE_REDIS_URL, delete_redis_keys

pytestmark = pytest.mark.integration

Opener = Callable[[], RedisCache]


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"test-near-{secrets.token_hex(6)}:"
    yield prefix
    await delete_redis_keys(redis_url, prefix)


@pytest.fixture
async def open_instance(redis_url: str, prefix: str) -> AsyncIterator[Opener]:
    """Opens instances sharing one Redis prefix, as the processes of one deployment do."""
    opened: list[RedisCache] = []

    def open_one() -> RedisCache:
        cache = RedisCache(
            redis_url, timeout_seconds=2.0, key_prefix=prefix, near_cache_entries=100, near_cache_prefixes=("apikey:",)
        )
        opened.append(cache)
        return cache

    yield open_one
    for cache in opened:
        await cache.close()


@pytest.fixture
async def plain_redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def near_of(cache: RedisCache) -> NearCache:
    assert cache.near_cache is not None
    return cache.near_cache


async def eventually(condition: Callable[[], Awaitable[bool]], *, within: float, what: str) -> float:
    """Seconds until `condition` holds; fails after `within`."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < within, f"{what} not within {within} s"
        await asyncio.sleep(0.002)
    return time.monotonic() - started


async def served_from_memory(cache: RedisCache, key: str) -> bytes:
    near = near_of(cache)
    value: bytes | None = None

    async def hit() -> bool:
        nonlocal value
        hits = near.hits
        value = await cache.get(key)
        return near.hits > hits

    await eventually(hit, within=5, what=f"{key} served from memory")
    assert value is not None
    return value


async def test_a_delete_on_one_instance_reaches_the_others_memory_within_200_ms(open_instance: Opener) -> None:
    first, second = open_instance(), open_instance()
    await first.set("apikey:h1", b"principal", 300)
    assert await served_from_memory(second, "apikey:h1") == b"principal"
    await first.delete("apikey:h1")

    async def missed() -> bool:
        return await second.get("apikey:h1") is None

    await eventually(missed, within=0.2, what="the delete seen by the other instance")
    assert await first.get("apikey:h1") is None


async def test_a_change_made_outside_mintlog_reaches_the_near_cache_too(
    open_instance: Opener, plain_redis: Redis, prefix: str
) -> None:
    """Redis itself reports every change of a tracked key: a `DEL` or `SET` from redis-cli, an expiry."""
    cache = open_instance()
    await cache.set("apikey:neg", b"-", 30)  # a negative verdict (unknown key)
    await cache.set("apikey:pos", b"principal", 300)
    assert await served_from_memory(cache, "apikey:neg") == b"-"
    assert await served_from_memory(cache, "apikey:pos") == b"principal"
    await plain_redis.set(f"{prefix}apikey:neg", b"principal-now", px=30_000)
    await plain_redis.delete(f"{prefix}apikey:pos")

    async def both_seen() -> bool:
        return await cache.get("apikey:neg") == b"principal-now" and await cache.get("apikey:pos") is None

    await eventually(both_seen, within=0.2, what="changes made with a plain client")


async def test_keys_outside_the_tracked_prefixes_always_read_redis(open_instance: Opener) -> None:
    cache = open_instance()
    await cache.set("apikey:warm", b"p", 300)
    await served_from_memory(cache, "apikey:warm")
    await cache.set("idem:batch", b"answer", 300)
    hits = near_of(cache).hits
    for _ in range(5):
        assert await cache.get("idem:batch") == b"answer"
    assert near_of(cache).hits == hits


async def test_with_its_subscription_killed_an_instance_reads_redis_until_it_has_resubscribed(
    open_instance: Opener, plain_redis: Redis, prefix: str
) -> None:
    cache = open_instance()
    await cache.set("apikey:k", b"v1", 300)
    await served_from_memory(cache, "apikey:k")
    near = near_of(cache)

    await plain_redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # pyright: ignore[reportUnknownMemberType]

    async def down() -> bool:
        return not near.serving

    await eventually(down, within=1, what="the lost subscription noticed")
    assert len(near) == 0
    # Changed while nobody listens: no invalidation will ever arrive for this write.
    await plain_redis.set(f"{prefix}apikey:k", b"v2", px=300_000)
    hits = near.hits
    assert await cache.get("apikey:k") == b"v2"
    assert near.hits == hits

    async def resubscribed() -> bool:
        return near.serving

    await eventually(resubscribed, within=5, what="the subscription back")
    assert await served_from_memory(cache, "apikey:k") == b"v2"
    await plain_redis.delete(f"{prefix}apikey:k")

    async def missed() -> bool:
        return await cache.get("apikey:k") is None

    await eventually(missed, within=0.2, what="a delete after resubscribing")


async def test_with_redis_unreachable_nothing_is_served_from_memory() -> None:
    redis = RedisCache(UNREACHABLE_REDIS_URL, timeout_seconds=0.5, near_cache_entries=100)
    resilient = ResilientCache(redis)
    try:
        with pytest.raises(CacheUnavailable):
            await redis.get("apikey:x")
        await resilient.set("apikey:x", b"v", 60)
        assert await resilient.get("apikey:x") is None
        await asyncio.sleep(0.1)
        assert not near_of(redis).serving
    finally:
        await resilient.close()
