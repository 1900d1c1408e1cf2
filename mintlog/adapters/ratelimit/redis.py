"""`RedisRateLimiter`: token buckets shared by every instance, one atomic Lua script per decision.

The script reads the bucket, refills it by the time elapsed on Redis's own clock (`TIME`, so instances
with skewed clocks agree), takes the cost if it is there and writes the bucket back, all in one atomic
step. A bucket expires once it would be full again, so idle keys cost no memory. Any Redis or network
failure raises `CacheUnavailable`; `FallbackRateLimiter` turns that into a local decision.

Leases (`lease_fraction > 0`): an allowed request also takes a lease, up to `lease_fraction` of the burst
(at least 1 token, never more than the bucket holds after the request), in the same atomic step. This
process then spends the lease alone, without asking Redis, for at most `lease_seconds`; a request the
lease cannot pay asks Redis, giving back what is left of the lease in the same step (an expired lease too),
so no token is ever spent twice nor hoarded past the next request. A refusal from Redis is likewise
remembered for `lease_seconds`: the same cost or more is refused locally until the bucket has refilled
enough by this process's view. Concurrent requests of one key in one process wait for the Redis call in
flight and then try its lease, so a burst costs one round trip per lease, not one per request.

Precision: tokens are taken from Redis before they are spent and given back unspent, so in any time
window the requests allowed across all instances stay within `burst + rate * window + instances * lease`
(the leases held when the window opens). With one instance, `remaining` is exact; with several it is this
instance's view: its unspent lease plus what the shared bucket held at its last answer, refilled since.
Another instance's lease can make a request here be refused while tokens sit unspent there, for at most
`lease_seconds`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from mintlog.adapters.cache.redis_client import REDIS_FAILURES, redis_client
from mintlog.domain.ratelimit import Lease, RateDecision, decide, lease_size
from mintlog.errors import CacheUnavailable

__all__ = ["DEFAULT_KEY_PREFIX", "RedisRateLimiter"]

DEFAULT_KEY_PREFIX = "mintlog:rl:"

# KEYS[1] bucket; ARGV rate_per_second, burst, cost, lease wanted, lease given back.
# Returns {allowed (0/1), tokens before the request (refilled, lease given back), tokens leased}.
# Floats travel as strings: Redis truncates Lua numbers returned to the client to integers.
_BUCKET_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
local given_back = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
tokens = math.min(burst, tokens + given_back)
local before = tokens
local allowed = 0
local leased = 0
if tokens + 1e-9 >= cost then
  tokens = tokens - cost
  allowed = 1
  leased = math.max(0, math.min(wanted, math.floor(tokens + 1e-9)))
  tokens = tokens - leased
end
if tokens >= burst then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
return {allowed, string.format('%.17g', before), string.format('%.17g', leased)}
"""


class _Flight:
    """A Redis call in progress for one key; others wait for it, then try its lease."""

    __slots__ = ("done", "failure")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.failure: CacheUnavailable | None = None


class RedisRateLimiter:
    """The `RateLimiter` port on Redis (`EVALSHA`, loading the script again after a Redis restart)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        lease_fraction: float = 0.0,
        lease_seconds: float = 1.0,
        max_leases: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = redis_client(url, timeout_seconds=timeout_seconds)
        self._script: Any = self._client.register_script(_BUCKET_SCRIPT)  # pyright: ignore[reportUnknownMemberType]
        self._prefix = key_prefix
        self._lease_fraction = lease_fraction
        self._lease_seconds = lease_seconds
        self._max_leases = max_leases
        self._clock = clock
        self._leases: OrderedDict[str, Lease] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self.redis_calls = 0

    async def acquire(self, key: str, *, rate_per_second: float, burst: float, cost: float = 1) -> RateDecision:
        """Take `cost` tokens from bucket `key` if it holds them; raises `CacheUnavailable` if Redis fails."""
        if rate_per_second <= 0 or burst <= 0:
            raise ValueError(f"rate_per_second and burst must be positive, got {rate_per_second} and {burst}")
        if self._lease_fraction <= 0:
            return await self._ask(key, rate_per_second=rate_per_second, burst=burst, cost=cost)
        while True:
            lease = self._leases.get(key)
            if lease is not None:
                decision = lease.spend(self._clock(), rate_per_second=rate_per_second, burst=burst, cost=cost)
                if decision is not None:
                    return decision
            flight = self._flights.get(key)
            if flight is None:
                break
            await flight.done.wait()
            if flight.failure is not None:
                raise CacheUnavailable(f"Redis rate limiter failed: {flight.failure}")
        flight = self._flights[key] = _Flight()
        try:
            return await self._ask(key, rate_per_second=rate_per_second, burst=burst, cost=cost)
        except CacheUnavailable as exc:
            flight.failure = exc
            raise
        finally:
            del self._flights[key]
            flight.done.set()

    async def _ask(self, key: str, *, rate_per_second: float, burst: float, cost: float) -> RateDecision:
        """One atomic step in Redis: give back this process's lease, take `cost`, and lease more if allowed."""
        previous = self._leases.pop(key, None)
        given_back = previous.leased if previous is not None else 0.0
        wanted = lease_size(burst, self._lease_fraction) if cost > 0 else 0.0
        self.redis_calls += 1
        try:
            allowed, tokens_before, leased = await self._script(
                keys=[self._prefix + key],
                args=[
                    repr(float(rate_per_second)),
                    repr(float(burst)),
                    repr(float(cost)),
                    repr(wanted),
                    repr(given_back),
                ],
            )
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis rate limiter failed: {type(exc).__name__}: {exc}") from exc
        allowed, tokens_before, leased = allowed == 1, float(tokens_before), float(leased)
        if self._lease_fraction > 0 and (leased > 0 or not allowed):
            now = self._clock()
            self._remember(
                key,
                Lease(
                    rate_per_second=rate_per_second,
                    burst=burst,
                    leased=leased,
                    shared_tokens=tokens_before - cost - leased if allowed else tokens_before,
                    answered_at=now,
                    valid_until=now + self._lease_seconds,
                    refused_cost=float("inf") if allowed else cost,
                ),
            )
        return decide(tokens_before, allowed=allowed, rate_per_second=rate_per_second, burst=burst, cost=cost)

    def _remember(self, key: str, lease: Lease) -> None:
        """Keep `lease`; drop the least recently answered past `max_leases` (their tokens just refill)."""
        self._leases[key] = lease
        self._leases.move_to_end(key)
        while len(self._leases) > self._max_leases:
            self._leases.popitem(last=False)

    async def close(self) -> None:
        """Forget the leases (their tokens come back by refill) and close the connection pool."""
        self._leases.clear()
        await self._client.aclose()
