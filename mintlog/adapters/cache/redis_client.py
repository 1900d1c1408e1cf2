"""The Redis connection shared by the Redis adapters (`RedisCache`, its invalidation subscription and
`RedisRateLimiter`): how a client is built and which errors mean Redis is unavailable."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = ["REDIS_FAILURES", "redis_client"]

# Errors of the client or the socket beneath it; all of them mean "Redis cannot serve this command now".
REDIS_FAILURES = (RedisError, OSError, TimeoutError)


def redis_client(url: str, *, timeout_seconds: float) -> Redis:
    """A client whose every command (connect included) fails within about `timeout_seconds`.

    One immediate retry lets a pooled connection that died (Redis restarted) reconnect; no backoff, since
    callers fall back rather than wait.
    """
    return Redis.from_url(  # pyright: ignore[reportUnknownMemberType]
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), retries=1),
        decode_responses=False,
    )
