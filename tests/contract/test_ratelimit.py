"""The `RateLimiter` contract, over the in-process limiter, Redis (without and with leases), and the fallback
limiter with Redis up (leased, as in production) and with Redis unreachable (where it must still limit,
never raise). With one instance a leased limiter's `remaining` is exact, so every case holds unchanged.

Rates are small and sleeps short: a refill is checked at 10 tokens/s with ~0.15 s of slack.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable

import pytest

from mintlog.adapters.ratelimit.fallback import FallbackRateLimiter
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.adapters.ratelimit.redis import RedisRateLimiter
from mintlog.errors import CacheUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.ratelimit import RateLimiter
from tests.services import UNREACHABLE_REDIS_URL, delete_redis_keys

SLOW = 0.001  # tokens/s: no refill within a test


@pytest.fixture(params=["memory", "redis", "redis-leased", "fallback-redis-up", "fallback-redis-down"])
async def open_limiter(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], RateLimiter]]:
    """Opens limiters of one kind; every limiter opened by a test shares its buckets (as instances would)."""
    kind: str = request.param
    prefix = f"test-rl-{secrets.token_hex(6)}:"
    redis_url = request.getfixturevalue("redis_url") if kind in ("redis", "redis-leased", "fallback-redis-up") else ""
    opened: list[RateLimiter] = []
    shared_memory = MemoryRateLimiter()

    def open_one() -> RateLimiter:
        limiter: RateLimiter
        if kind == "memory":
            limiter = shared_memory
        elif kind == "redis":
            limiter = RedisRateLimiter(redis_url, timeout_seconds=2.0, key_prefix=prefix)
        elif kind == "redis-leased":
            limiter = RedisRateLimiter(redis_url, timeout_seconds=2.0, key_prefix=prefix, lease_fraction=0.1)
        elif kind == "fallback-redis-up":
            leased = RedisRateLimiter(redis_url, timeout_seconds=2.0, key_prefix=prefix, lease_fraction=0.1)
            limiter = FallbackRateLimiter(leased, MemoryRateLimiter())
        else:
            unreachable = RedisRateLimiter(UNREACHABLE_REDIS_URL, timeout_seconds=0.5, lease_fraction=0.1)
            limiter = FallbackRateLimiter(unreachable, shared_memory)
        opened.append(limiter)
        return limiter

    yield open_one
    for limiter in opened:
        await limiter.close()
    if redis_url:
        await delete_redis_keys(redis_url, prefix)


@pytest.fixture
def limiter(open_limiter: Callable[[], RateLimiter]) -> RateLimiter:
    return open_limiter()


async def test_a_burst_passes_then_requests_are_refused(limiter: RateLimiter) -> None:
    decisions = [await limiter.acquire("k", rate_per_second=1, burst=5) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert {d.limit for d in decisions} == {5}
    refused = decisions[-1]
    assert 0 < refused.retry_after_seconds <= 1.0
    assert 4.0 < refused.reset_seconds <= 5.0
    assert decisions[0].retry_after_seconds == 0
    assert 0 < decisions[0].reset_seconds <= 1.0


async def test_tokens_come_back_over_time(limiter: RateLimiter) -> None:
    for _ in range(2):
        assert (await limiter.acquire("k", rate_per_second=10, burst=2)).allowed
    refused = await limiter.acquire("k", rate_per_second=10, burst=2)
    assert not refused.allowed
    assert 0 < refused.retry_after_seconds <= 0.1
    await asyncio.sleep(refused.retry_after_seconds + 0.05)
    assert (await limiter.acquire("k", rate_per_second=10, burst=2)).allowed
    assert not (await limiter.acquire("k", rate_per_second=10, burst=2)).allowed
    await asyncio.sleep(0.25)
    again = await limiter.acquire("k", rate_per_second=10, burst=2)
    assert again.allowed
    assert again.remaining == 1  # refilled to the full burst, never beyond


async def test_a_request_costs_its_cost_and_a_refused_one_costs_nothing(limiter: RateLimiter) -> None:
    first = await limiter.acquire("events", rate_per_second=SLOW, burst=10, cost=7)
    assert first.allowed
    assert first.remaining == 3
    refused = await limiter.acquire("events", rate_per_second=SLOW, burst=10, cost=4)
    assert not refused.allowed
    assert refused.remaining == 3
    assert (await limiter.acquire("events", rate_per_second=SLOW, burst=10, cost=3)).allowed
    assert not (await limiter.acquire("events", rate_per_second=SLOW, burst=10, cost=1)).allowed


async def test_a_cost_above_the_burst_never_passes(limiter: RateLimiter) -> None:
    decision = await limiter.acquire("big", rate_per_second=100, burst=10, cost=11)
    assert not decision.allowed
    assert decision.remaining == 10
    assert decision.retry_after_seconds >= 0
    assert (await limiter.acquire("big", rate_per_second=100, burst=10, cost=10)).allowed


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("a", rate_per_second=SLOW, burst=1)).allowed
    assert not (await limiter.acquire("a", rate_per_second=SLOW, burst=1)).allowed
    assert (await limiter.acquire("b", rate_per_second=SLOW, burst=1)).allowed


async def test_a_fractional_rate_refills_fractionally(limiter: RateLimiter) -> None:
    """A key limited to 1 request/minute with a 1-request burst: one passes, the next waits ~60 s."""
    assert (await limiter.acquire("slow", rate_per_second=1 / 60, burst=1)).allowed
    refused = await limiter.acquire("slow", rate_per_second=1 / 60, burst=1)
    assert not refused.allowed
    assert 59 < refused.retry_after_seconds <= 60


async def test_concurrent_requests_never_take_more_than_the_burst(open_limiter: Callable[[], RateLimiter]) -> None:
    """Atomicity: 60 requests at once from three instances sharing the buckets; exactly the burst passes."""
    instances = [open_limiter() for _ in range(3)]
    decisions = await asyncio.gather(
        *(instances[i % 3].acquire("hot", rate_per_second=SLOW, burst=10) for i in range(60))
    )
    assert sum(d.allowed for d in decisions) == 10


async def test_redis_errors_are_translated() -> None:
    limiter = RedisRateLimiter(UNREACHABLE_REDIS_URL, timeout_seconds=0.5)
    try:
        with pytest.raises(CacheUnavailable):
            await limiter.acquire("k", rate_per_second=1, burst=1)
    finally:
        await limiter.close()


async def test_an_unreachable_redis_falls_back_to_limiting_locally_and_counts_it() -> None:
    metrics = Metrics()
    limiter = FallbackRateLimiter(
        RedisRateLimiter(UNREACHABLE_REDIS_URL, timeout_seconds=0.5), MemoryRateLimiter(), metrics=metrics
    )
    started = time.monotonic()
    try:
        decisions = [await limiter.acquire("k", rate_per_second=SLOW, burst=3) for _ in range(200)]
    finally:
        await limiter.close()
    assert time.monotonic() - started < 2.0
    assert sum(d.allowed for d in decisions) == 3
    assert limiter.on_fallback
    assert metrics.registry.get_sample_value("mintlog_ratelimit_fallbacks_total") == 200


async def test_idle_buckets_expire_in_redis(redis_url: str) -> None:
    from redis.asyncio import Redis

    prefix = f"test-rl-{secrets.token_hex(6)}:"
    limiter = RedisRateLimiter(redis_url, timeout_seconds=2.0, key_prefix=prefix)
    client = Redis.from_url(redis_url)
    try:
        await limiter.acquire("idle", rate_per_second=10, burst=5, cost=5)
        ttl_ms = await client.pttl(f"{prefix}idle")
        assert 0 < ttl_ms <= 1500  # full again after 0.5 s, plus a second of slack
        await limiter.acquire("untouched", rate_per_second=10, burst=5, cost=0)
        assert await client.exists(f"{prefix}untouched") == 0  # a full bucket is not stored
    finally:
        await client.aclose()
        await limiter.close()
        await delete_redis_keys(redis_url, prefix)
