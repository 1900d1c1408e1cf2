"""The in-process limiter's memory bound and the fallback limiter's switching, on fake clocks."""

from __future__ import annotations

import logging

import pytest

from mintlog.adapters.ratelimit.fallback import FallbackRateLimiter
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.domain.ratelimit import RateDecision
from mintlog.errors import CacheUnavailable
from tests.fakes import FakeClock as Clock


class SwitchableLimiter:
    """A primary that answers "allowed" until `down` is set, then raises like an unreachable Redis."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0
        self.closed = False

    async def acquire(self, key: str, *, rate_per_second: float, burst: float, cost: float = 1) -> RateDecision:
        self.calls += 1
        if self.down:
            raise CacheUnavailable("redis down")
        return RateDecision(allowed=True, limit=int(burst), remaining=0, reset_seconds=0, retry_after_seconds=0)

    async def close(self) -> None:
        self.closed = True


async def test_buckets_that_filled_up_while_idle_are_forgotten() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    for key in range(100):
        await limiter.acquire(f"k{key}", rate_per_second=1, burst=10)
    assert len(limiter) == 100
    clock.now += 1.5  # every bucket is full again
    await limiter.acquire("fresh", rate_per_second=1, burst=10)
    assert len(limiter) == 1


async def test_a_full_bucket_costs_no_memory() -> None:
    limiter = MemoryRateLimiter(clock=Clock())
    await limiter.acquire("k", rate_per_second=1, burst=10, cost=0)
    assert len(limiter) == 0


async def test_memory_stays_bounded_under_many_busy_keys() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(max_buckets=50, clock=clock)
    for key in range(1000):
        await limiter.acquire(f"k{key}", rate_per_second=0.001, burst=10)
    assert len(limiter) == 50
    # The most recent keys keep their state.
    assert (await limiter.acquire("k999", rate_per_second=0.001, burst=10)).remaining == 8


async def test_a_bucket_refills_on_the_clock() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(3):
        await limiter.acquire("k", rate_per_second=2, burst=3)
    refused = await limiter.acquire("k", rate_per_second=2, burst=3)
    assert not refused.allowed
    assert refused.retry_after_seconds == pytest.approx(0.5)
    assert refused.reset_seconds == pytest.approx(1.5)
    clock.now += 0.5
    assert (await limiter.acquire("k", rate_per_second=2, burst=3)).allowed
    clock.now -= 10  # a clock going back never adds tokens
    assert not (await limiter.acquire("k", rate_per_second=2, burst=3)).allowed


async def test_the_fallback_limits_locally_while_the_primary_is_down_and_returns_to_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    primary = SwitchableLimiter()
    limiter = FallbackRateLimiter(primary, MemoryRateLimiter(clock=clock), retry_after_seconds=5, clock=clock)
    assert (await limiter.acquire("k", rate_per_second=0.001, burst=2)).allowed
    assert primary.calls == 1

    primary.down = True
    with caplog.at_level(logging.WARNING):
        decisions = [await limiter.acquire("k", rate_per_second=0.001, burst=2) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, False, False, False]
    assert primary.calls == 2, "the primary is left alone during the back-off"
    assert limiter.on_fallback
    assert sum("limiting in this process" in r.getMessage() for r in caplog.records) == 1

    primary.down = False
    clock.now += 5
    assert (await limiter.acquire("k", rate_per_second=0.001, burst=2)).allowed
    assert primary.calls == 3
    assert not limiter.on_fallback

    await limiter.close()
    assert primary.closed
