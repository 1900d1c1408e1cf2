"""`RedisCache`: the shared cache of a multi-instance deployment, on `redis.asyncio`.

Every instance of every role reads and writes the same entries, so deleting one (a revoked key) takes
effect everywhere at once. Each command is bounded by `timeout_seconds`; any Redis or network failure is
raised as `CacheUnavailable`, never as a vendor exception. Wrap it in `ResilientCache` to turn those into
misses.

With `near_cache_entries > 0`, keys under `near_cache_prefixes` are also kept in this process
(`NearCache`, at most `near_cache_max_ttl_seconds` each) and served from memory, without a round trip,
while the invalidation subscription (`RedisInvalidations`) is live. Redis itself announces every change of
those keys, made by anyone, so a delete is visible on every instance as soon as the pub/sub message
arrives (typically < 1 ms on a LAN); with the subscription down, starting or silent for more than
`NearCache.max_silence_seconds`, instances read Redis directly. The subscription starts with the first
command.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mintlog.adapters.cache.near import NearCache
from mintlog.adapters.cache.redis_client import REDIS_FAILURES, redis_client
from mintlog.adapters.cache.tracking import RedisInvalidations
from mintlog.errors import CacheUnavailable

__all__ = ["DEFAULT_KEY_PREFIX", "RedisCache"]

logger = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "mintlog:cache:"


class RedisCache:
    """The `Cache` port on Redis: `SET … PX` for expiry, so entries vanish on the server when they expire.

    Keys are stored under `key_prefix` so that Mintlog can share a Redis database with other users.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        near_cache_entries: int = 0,
        near_cache_prefixes: Sequence[str] = ("",),
        near_cache_max_ttl_seconds: float = 60.0,
    ) -> None:
        self._client = redis_client(url, timeout_seconds=timeout_seconds)
        self._prefix = key_prefix
        self._near: NearCache | None = None
        self._near_prefixes = tuple(near_cache_prefixes)
        self._invalidations: RedisInvalidations | None = None
        if near_cache_entries > 0:
            self._near = NearCache(max_entries=near_cache_entries, max_ttl_seconds=near_cache_max_ttl_seconds)
            self._invalidations = RedisInvalidations(
                self._client,
                self._near,
                key_prefix=key_prefix,
                tracked=self._near_prefixes,
                timeout_seconds=timeout_seconds,
            )

    @property
    def near_cache(self) -> NearCache | None:
        """The in-process layer, when enabled (to observe it: `serving`, `hits`)."""
        return self._near

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired; raises `CacheUnavailable`."""
        near = self._near
        if near is None or not key.startswith(self._near_prefixes):
            return await self._get(key)
        assert self._invalidations is not None
        self._invalidations.start()
        value = near.get(key)
        if value is not None:
            return value
        generation = near.generation
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.get(self._prefix + key)
                pipe.pttl(self._prefix + key)
                value, ttl_ms = await pipe.execute()
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis GET failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(value, bytes):
            return None
        if isinstance(ttl_ms, int) and ttl_ms > 0:
            near.put(key, value, ttl_ms / 1000, generation)
        return value

    async def _get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(self._prefix + key)
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis GET failed: {type(exc).__name__}: {exc}") from exc
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store `value` for `ttl_seconds` (at least 1 ms); raises `CacheUnavailable`."""
        if self._near is not None:
            self._near.discard(key)
        try:
            await self._client.set(self._prefix + key, value, px=max(1, int(ttl_seconds * 1000)))
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis SET failed: {type(exc).__name__}: {exc}") from exc

    async def delete(self, key: str) -> None:
        """Forget `key` on every instance (at once in Redis and here, as soon as the invalidation arrives in
        other instances' near caches); raises `CacheUnavailable`, after forgetting it in this process."""
        if self._near is not None:
            self._near.discard(key)
        try:
            await self._client.delete(self._prefix + key)
        except REDIS_FAILURES as exc:
            raise CacheUnavailable(f"Redis DEL failed: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Stop the invalidation subscription and close the connection pool."""
        if self._invalidations is not None:
            await self._invalidations.close()
        await self._client.aclose()
