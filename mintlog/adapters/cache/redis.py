"""`RedisCache`: the shared cache of a multi-instance deployment, on `redis.asyncio`.

Every instance of every role reads and writes the same entries, so deleting one (a revoked key) takes
effect everywhere at once. Each command is bounded by `timeout_seconds`; any Redis or network failure is
raised as `CacheUnavailable`, never as a vendor exception. Wrap it in `ResilientCache` to turn those into
misses.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mintlog.errors import CacheUnavailable

__all__ = ["DEFAULT_KEY_PREFIX", "REDIS_FAILURES", "RedisCache", "redis_client"]

logger = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "mintlog:cache:"
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


class RedisCache:
    """The `Cache` port on Redis: `SET … PX` for expiry, so entries vanish on the server when they expire.

    Keys are stored under `key_prefix` so that Mintlog can share a Redis database with other users.
    """

    def __init__(self, url: str, *, timeout_seconds: float, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self._client = redis_client(url, timeout_seconds=timeout_seconds)
        self._prefix = key_prefix

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired; raises `CacheUnavailable`."""
        try:
            value = await self._client.get(self._prefix + key)
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis GET failed: {type(exc).__name__}: {exc}") from exc
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store `value` for `ttl_seconds` (at least 1 ms); raises `CacheUnavailable`."""
        try:
            await self._client.set(self._prefix + key, value, px=max(1, int(ttl_seconds * 1000)))
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis SET failed: {type(exc).__name__}: {exc}") from exc

    async def delete(self, key: str) -> None:
        """Forget `key` on every instance at once; raises `CacheUnavailable`."""
        try:
            await self._client.delete(self._prefix + key)
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis DEL failed: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
