"""Leased rate limiting on a real Redis: instances spend small leases locally, yet all of them together
stay within `burst + instances * lease` in a burst, and a lease is given back, never hoarded."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import pytest

from mintlog.adapters.ratelimit.redis import RedisRateLimiter
from tests.services import delete_redis_keys

pytestmark = pytest.mark.integration

SLOW = 0.001  # tokens/s: no refill within a test


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def open_instance(redis_url: str) -> AsyncIterator[Callable[..., RedisRateLimiter]]:
    prefix = f"test-lease-{secrets.token_hex(6)}:"
    opened: list[RedisRateLimiter] = []

    def open_one(**options: object) -> RedisRateLimiter:
        limiter = RedisRateLimiter(
            redis_url,
            timeout_seconds=2.0,
            key_prefix=prefix,
            lease_fraction=0.1,
            **options,  # type: ignore[arg-type]
        )
        opened.append(limiter)
        return limiter

    yield open_one
    for limiter in opened:
        await limiter.close()
    await delete_redis_keys(redis_url, prefix)


async def test_three_instances_never_exceed_the_burst_plus_their_leases(
    open_instance: Callable[..., RedisRateLimiter],
) -> None:
    """60 concurrent requests per round from three instances, with the bucket refilling between rounds."""
    instances = [open_instance() for _ in range(3)]
    rate, burst, lease = 20.0, 40.0, 4  # a lease is 10 % of the burst
    allowed = 0
    started = asyncio.get_running_loop().time()
    for _ in range(5):
        decisions = await asyncio.gather(
            *(instances[i % 3].acquire("hot", rate_per_second=rate, burst=burst) for i in range(60))
        )
        allowed += sum(d.allowed for d in decisions)
        await asyncio.sleep(0.1)
    elapsed = asyncio.get_running_loop().time() - started
    assert allowed <= burst + rate * elapsed + 3 * lease
    assert allowed >= burst  # leases hoard nothing: the first burst alone is granted in full
    assert sum(i.redis_calls for i in instances) < 300 / 2


async def test_a_burst_of_concurrent_requests_is_granted_exactly_with_one_round_trip_per_lease(
    open_instance: Callable[..., RedisRateLimiter],
) -> None:
    limiter = open_instance()
    decisions = await asyncio.gather(*(limiter.acquire("k", rate_per_second=SLOW, burst=100) for _ in range(150)))
    assert sum(d.allowed for d in decisions) == 100
    assert [d.remaining for d in decisions if d.allowed] == list(range(99, -1, -1))
    # 100 tokens in leases of 10 (+1 for the request that takes each), then refusals remembered locally.
    assert limiter.redis_calls <= 12


async def test_an_unspent_lease_is_given_back_when_its_instance_next_asks(
    open_instance: Callable[..., RedisRateLimiter],
) -> None:
    first, second, third = open_instance(), open_instance(), open_instance()
    assert (await first.acquire("k", rate_per_second=SLOW, burst=10)).allowed  # takes 1, leases 1: 8 left
    for _ in range(8):
        assert (await second.acquire("k", rate_per_second=SLOW, burst=10)).allowed
    assert not (await second.acquire("k", rate_per_second=SLOW, burst=10)).allowed  # first holds the last
    # A cost first's lease cannot pay: the lease goes back in the same step, and pays for this request.
    decision = await first.acquire("k", rate_per_second=SLOW, burst=10, cost=2)
    assert not decision.allowed
    assert decision.remaining == 1
    assert (await third.acquire("k", rate_per_second=SLOW, burst=10)).allowed
    assert not (await third.acquire("k", rate_per_second=SLOW, burst=10)).allowed


async def test_an_expired_lease_is_not_spent(open_instance: Callable[..., RedisRateLimiter]) -> None:
    clock = Clock()
    first, second = open_instance(clock=clock), open_instance()
    assert (await first.acquire("k", rate_per_second=SLOW, burst=2)).allowed  # leases the other token
    clock.now += 1.5
    assert not (await second.acquire("k", rate_per_second=SLOW, burst=2)).allowed
    calls = first.redis_calls
    # Expired: first asks Redis (giving the token back, then taking it) instead of spending it silently.
    assert (await first.acquire("k", rate_per_second=SLOW, burst=2)).allowed
    assert first.redis_calls == calls + 1
