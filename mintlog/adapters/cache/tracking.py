"""`RedisInvalidations`: the subscription through which Redis tells this process which cache keys changed.

It uses Redis's own client-side-caching support (`CLIENT TRACKING … BCAST PREFIX`, Redis ≥ 6): one
dedicated connection subscribes to `__redis__:invalidate`, and Redis publishes there the name of every key
under the tracked prefixes that is written, deleted, expires or is evicted, whoever changed it (a
`RedisCache.delete` on any instance, but also a plain `DEL` from redis-cli), and a null on `FLUSHDB`.
A delete is therefore visible on every instance as soon as the message arrives (typically < 1 ms on a LAN).

A heartbeat (`PING` on the same connection every `heartbeat_seconds`; its answer arrives after every
invalidation sent before it) keeps the `NearCache` confirmed. A heartbeat unanswered for `timeout_seconds`,
a closed connection (Redis restarted, `CLIENT KILL`) or any Redis error ends the subscription: the near
cache stops serving and is cleared, and the subscription is made again after `resubscribe_delay_seconds`
(doubling up to 30 s while it keeps failing). A Redis that refuses `CLIENT TRACKING` (older than 6, or the
command disabled) simply leaves the near cache off: every read goes to Redis.

The heartbeat reads with a timeout on a raw connection, which needs redis-py's hiredis parser (a declared
dependency: `redis[hiredis]`). With the pure-Python parser the subscription never confirms itself live,
so the near cache never serves and every lookup reads Redis: slower, never wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mintlog.adapters.cache.near import NearCache
from mintlog.adapters.cache.redis_client import REDIS_FAILURES

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.connection import AbstractConnection

__all__ = ["INVALIDATION_CHANNEL", "RedisInvalidations"]

logger = logging.getLogger(__name__)

INVALIDATION_CHANNEL = b"__redis__:invalidate"
_MAX_RESUBSCRIBE_DELAY_SECONDS = 30.0


class RedisInvalidations:
    """Keeps a `NearCache` in step with Redis for the keys under `key_prefix` + each of `tracked`."""

    def __init__(
        self,
        client: Redis,
        near: NearCache,
        *,
        key_prefix: str,
        tracked: Sequence[str],
        timeout_seconds: float,
        heartbeat_seconds: float = 0.1,
        resubscribe_delay_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._near = near
        self._key_prefix = key_prefix
        self._prefixes = [key_prefix + prefix for prefix in tracked]
        self._timeout_seconds = timeout_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._resubscribe_delay_seconds = resubscribe_delay_seconds
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pings_sent: deque[float] = deque()
        self.subscriptions = 0

    def start(self) -> None:
        """Subscribe in the background (idempotent); the near cache serves once Redis confirms."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-cache-invalidations")

    async def close(self) -> None:
        """Stop listening and close the subscription's connection; the near cache stops serving."""
        task, self._task = self._task, None
        self._stopping = True
        if task is not None:
            # A cancellation that lands as a read times out can be swallowed by redis-py's timeout handling:
            # repeat it until the task has ended (the stop flag ends the loop too).
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.05)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._near.went_down()

    async def _run(self) -> None:
        failures_in_a_row = 0
        while not self._stopping:
            subscriptions_before = self.subscriptions
            try:
                await self._subscribe_and_listen()
            except Exception as exc:
                if self.subscriptions != subscriptions_before:
                    failures_in_a_row = 0
                failures_in_a_row += 1
                if failures_in_a_row == 1 and isinstance(exc, REDIS_FAILURES):
                    logger.warning(
                        "cache invalidation subscription down, reading Redis directly until it is back: %s: %s",
                        type(exc).__name__,
                        exc,
                    )
                elif failures_in_a_row == 1:
                    logger.exception("cache invalidation subscription failed; reading Redis directly")
            finally:
                self._near.went_down()
            delay = self._resubscribe_delay_seconds * 2 ** min(max(0, failures_in_a_row - 1), 16)
            await asyncio.sleep(min(_MAX_RESUBSCRIBE_DELAY_SECONDS, delay))

    async def _subscribe_and_listen(self) -> None:
        pool = self._client.connection_pool
        # RESP2: invalidations arrive as ordinary pub/sub messages on this connection, read below in order
        # with the heartbeat's answers (RESP3 would route them to the client's push handler instead).
        options: dict[str, Any] = {**pool.connection_kwargs, "protocol": 2}
        connection: AbstractConnection = pool.connection_class(**options)
        try:
            await connection.connect()
            await connection.send_command("CLIENT", "ID")
            client_id: Any = await connection.read_response()  # pyright: ignore[reportUnknownVariableType]
            prefixes = [word for prefix in self._prefixes for word in ("PREFIX", prefix)]
            await connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *prefixes)
            await connection.read_response()
            subscribed_at = self._clock()
            await connection.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
            await connection.read_response()
            self._pings_sent.clear()
            self._near.went_live(confirmed_at=subscribed_at)
            self.subscriptions += 1
            logger.info("cache invalidation subscription live; hot API keys are served from memory")
            await self._listen(connection)
        finally:
            with contextlib.suppress(Exception):
                await connection.disconnect()

    async def _listen(self, connection: AbstractConnection) -> None:
        """Read messages until the connection fails, sending a heartbeat every `heartbeat_seconds` between
        reads (one task: the connection is never used concurrently)."""
        from redis.exceptions import TimeoutError as RedisTimeoutError

        next_heartbeat = self._clock()
        while not self._stopping:
            now = self._clock()
            if now >= next_heartbeat:
                if self._pings_sent and now - self._pings_sent[0] > self._timeout_seconds:
                    raise RedisTimeoutError(f"no answer to a heartbeat within {self._timeout_seconds} s")
                self._pings_sent.append(now)
                await connection.send_command("PING")
                next_heartbeat = now + self._heartbeat_seconds
            wait = max(0.001, next_heartbeat - self._clock())
            message: Any = await connection.read_response(timeout=wait)  # pyright: ignore[reportUnknownVariableType]
            if message is not None:
                self._handle(message)

    def _handle(self, message: Any) -> None:
        if not isinstance(message, list) or not message:
            return
        parts: list[Any] = message  # pyright: ignore[reportUnknownVariableType]
        kind = parts[0]
        if kind == b"message" and len(parts) == 3 and parts[1] == INVALIDATION_CHANNEL:
            keys = parts[2]
            if keys is None:
                self._near.discard_all()
                return
            prefix_length = len(self._key_prefix)
            for key in keys:  # pyright: ignore[reportUnknownVariableType]
                if isinstance(key, bytes):
                    self._near.discard(key[prefix_length:].decode("utf-8", "replace"))
        elif kind == b"pong" and self._pings_sent:
            self._near.confirmed(self._pings_sent.popleft())
