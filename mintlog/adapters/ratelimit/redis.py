"""`RedisRateLimiter`: token buckets shared by every instance, one atomic Lua script per decision.

The script reads the bucket, refills it by the time elapsed on Redis's own clock (`TIME`, so instances
with skewed clocks agree), takes the cost if it is there and writes the bucket back, all in one atomic
step. A bucket expires once it would be full again, so idle keys cost no memory. Any Redis or network
failure raises `CacheUnavailable`; `FallbackRateLimiter` turns that into a local decision.
"""

from __future__ import annotations

from typing import Any

from mintlog.adapters.cache.redis import REDIS_FAILURES, redis_client
from mintlog.domain.ratelimit import RateDecision, decide
from mintlog.errors import CacheUnavailable

__all__ = ["DEFAULT_KEY_PREFIX", "RedisRateLimiter"]

DEFAULT_KEY_PREFIX = "mintlog:rl:"

# KEYS[1] bucket; ARGV rate_per_second, burst, cost. Returns {allowed (0/1), tokens before the request}.
# Floats travel as strings: Redis truncates Lua numbers returned to the client to integers.
_BUCKET_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local before = tokens
local allowed = 0
if tokens + 1e-9 >= cost then
  tokens = tokens - cost
  allowed = 1
end
if tokens >= burst then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
return {allowed, string.format('%.17g', before)}
"""


class RedisRateLimiter:
    """The `RateLimiter` port on Redis (`EVALSHA`, loading the script again after a Redis restart)."""

    def __init__(self, url: str, *, timeout_seconds: float, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self._client = redis_client(url, timeout_seconds=timeout_seconds)
        self._script: Any = self._client.register_script(_BUCKET_SCRIPT)  # pyright: ignore[reportUnknownMemberType]
        self._prefix = key_prefix

    async def acquire(self, key: str, *, rate_per_second: float, burst: float, cost: float = 1) -> RateDecision:
        """Take `cost` tokens from bucket `key` if it holds them; raises `CacheUnavailable` if Redis fails."""
        if rate_per_second <= 0 or burst <= 0:
            raise ValueError(f"rate_per_second and burst must be positive, got {rate_per_second} and {burst}")
        try:
            allowed, tokens_before = await self._script(
                keys=[self._prefix + key], args=[repr(float(rate_per_second)), repr(float(burst)), repr(float(cost))]
            )
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis rate limiter failed: {type(exc).__name__}: {exc}") from exc
        return decide(
            float(tokens_before), allowed=allowed == 1, rate_per_second=rate_per_second, burst=burst, cost=cost
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
