"""`TailSession`: one live tail — subscribe, replay `since` from the store, hand over to live events, close.

The order that makes the hand-over gapless and duplicate-free:

1. subscribe to the tenant's parsed batches (`parsed_subject`) first; from then on every matching live event
   goes into the tail's bounded buffer (the subscriber only decodes, matches and enqueues: it never waits for
   the client);
2. wait `replay_settle_seconds`, so that events published just before the subscription (and so never seen
   live) have been indexed and are found by the replay;
3. replay matching stored events with `timestamp >= since`, oldest first, a page at a time with the store's
   search-after cursor, at most `max_replay_events` of them, remembering their ids;
4. send the buffered and then the new live events, skipping those whose id the replay already sent.

When the tail's key stops authenticating (revoked, expired, its tenant suspended or deleted), the hub calls
`TailSession.end`: the stream's next and last frame is the `TailEnded` naming why (`refusal_ended`). At
shutdown the hub calls `TailSession.stop`: the events already queued are sent, then `SHUTTING_DOWN`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from mintlog.domain.events import LogEvent
from mintlog.domain.streams import decode_parsed_batch, parsed_subject
from mintlog.domain.tenants import is_valid_tenant_id
from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.bus import EventBus
from mintlog.ports.logstore import LogStore, SearchAfter, SearchQuery
from mintlog.query import Node, QueryWarning
from mintlog.query.matcher import Matcher
from mintlog.roles.api.logs.tail_buffer import Dropped, TailBuffer
from mintlog.roles.api.logs.tail_hub import TailLease
from mintlog.settings import TailSettings

if TYPE_CHECKING:
    from mintlog.auth import KeyRefusal

__all__ = [
    "KEEPALIVE",
    "REPLAY_PAGE_SIZE",
    "SHUTTING_DOWN",
    "Keepalive",
    "ReplayTruncated",
    "TailEnded",
    "TailFrame",
    "TailSession",
    "TailSpec",
    "refusal_ended",
]

logger = logging.getLogger(__name__)

REPLAY_PAGE_SIZE = 500
"""Stored events fetched per store call while replaying."""


@dataclass(frozen=True, slots=True)
class TailSpec:
    """What one tail follows. `matcher` is `to_matcher(node, now)`: the same query the replay searches.
    `warnings` are the query's (docs/query-language.md, "Hints"), sent as frames once the tail is open."""

    tenant_id: str
    node: Node
    matcher: Matcher
    now: datetime
    since: datetime | None = None
    warnings: tuple[QueryWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class Keepalive:
    """Nothing to send for a while (or the stream just opened): a comment keeps proxies from closing it."""


KEEPALIVE = Keepalive()


@dataclass(frozen=True, slots=True)
class ReplayTruncated:
    """The replay stopped at `max_replay_events` (`replayed`) although more stored events matched."""

    replayed: int


@dataclass(frozen=True, slots=True)
class TailEnded:
    """The tail cannot go on (the bus or the store failed, or its key no longer authenticates): the last frame
    before the stream closes."""

    code: str
    detail: str


_REFUSAL_DETAILS: dict[KeyRefusal, str] = {
    "key_revoked": "the API key of this tail was revoked (or rotated without grace)",
    "key_expired": "the API key of this tail expired (or the grace of its rotation ended)",
    "tenant_suspended": "the tenant was suspended",
    "tenant_deleted": "the tenant was deleted",
    "key_invalid": "the API key of this tail no longer authenticates",
}


def refusal_ended(refusal: KeyRefusal) -> TailEnded:
    """The last frame of a tail whose key was refused: the refusal is the frame's `code`."""
    return TailEnded(refusal, _REFUSAL_DETAILS[refusal])


SHUTTING_DOWN = TailEnded(
    "server_shutting_down", "the server is shutting down; reconnect (with `since` to replay what was missed)"
)
"""The last frame of a tail ended by the server's shutdown."""


TailFrame = LogEvent | Dropped | Keepalive | ReplayTruncated | TailEnded | QueryWarning


def _live_subject(tenant_id: str) -> str:
    """The subject of the tenant's parsed batches (`parsed_subject`); a tenant id that could widen the
    subscription (a `.`, `*` or `>`) is refused, though the tenant of a tail always comes from its key."""
    if not is_valid_tenant_id(tenant_id):
        raise ValueError(f"not a tenant id: {tenant_id!r}")
    return parsed_subject(tenant_id)


class TailSession:
    """One tail: iterate `frames()` once; `close()` (idempotent) ends it from outside.

    Guarantees: events come out as `LogEvent` frames, replayed ones oldest first, then live ones in arrival
    order, none twice on account of the replay; a slow reader never delays the subscription (see
    `TailBuffer`); once `frames()` finishes or `close()` returns, the subscription is gone, no task of the
    session is left running, and the lease (the tenant's slot) is released. `end()` releases the lease and
    stops the subscription at once, and nothing but its frame is sent after it.
    """

    def __init__(
        self,
        spec: TailSpec,
        *,
        bus: EventBus,
        store: LogStore,
        settings: TailSettings,
        metrics: Metrics,
        lease: TailLease | None = None,
        replay_page_size: int = REPLAY_PAGE_SIZE,
    ) -> None:
        self._spec = spec
        self._bus = bus
        self._store = store
        self._settings = settings
        self._sent = metrics.tail_events_sent
        self._dropped = metrics.tail_events_dropped
        self._lease = lease
        self._page_size = replay_page_size
        self._buffer = TailBuffer(settings.buffer_events)
        self._replayed: set[str] = set()
        self._pump_task: asyncio.Task[None] | None = None
        self._ended: TailEnded | None = None
        self._closed = False
        if lease is not None:
            lease.on_stop = self.stop
            lease.on_refused = lambda refusal: self.end(refusal_ended(refusal))

    def stop(self) -> None:
        """End the stream once the client has read what is already queued, with `SHUTTING_DOWN` as its last
        frame (server shutdown)."""
        self._finish(SHUTTING_DOWN)
        self._buffer.close()

    def _finish(self, ended: TailEnded) -> None:
        """Make `ended` the last frame, unless the stream already has one (the first reason is the true one:
        at shutdown, the bus closing the subscription is a consequence)."""
        if self._ended is None:
            self._ended = ended

    def end(self, ended: TailEnded) -> None:
        """End the stream now with `ended` as its last frame: events still queued are not sent, the
        subscription is cancelled and the lease released before this returns."""
        self._ended = ended
        self._buffer.discard()
        if self._lease is not None:
            self._lease.release()
        if self._pump_task is not None:
            self._pump_task.cancel()

    async def close(self) -> None:
        """Unsubscribe, stop the session's task and release the lease; safe to call any number of times."""
        if self._closed:
            return
        self._closed = True
        # Everything that must happen is done before the first await: a caller being cancelled (the client
        # went away) may not get past it.
        self._buffer.close()
        if self._lease is not None:
            self._lease.release()
        task = self._pump_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def frames(self) -> AsyncGenerator[TailFrame, None]:
        """The stream: a first `Keepalive` once subscribed, the query's warnings, the replay (with `since`),
        then live events."""
        try:
            self._pump_task = asyncio.create_task(self._pump(), name=f"tail-{self._spec.tenant_id}")
            await asyncio.sleep(0)  # the pump subscribes in its first step
            yield KEEPALIVE
            for warning in self._spec.warnings:
                yield warning
            if self._spec.since is not None:
                if self._settings.replay_settle_seconds > 0:
                    await asyncio.sleep(self._settings.replay_settle_seconds)
                try:
                    async for event in self._replay(self._spec.since):
                        yield event
                except DependencyUnavailable as exc:
                    logger.warning("tail replay for tenant %s failed: %s", self._spec.tenant_id, exc)
                    yield TailEnded("store_unavailable", f"the replay failed: {exc}")
                    return
            async for frame in self._live():
                yield frame
        finally:
            await self.close()

    async def _replay(self, since: datetime) -> AsyncIterator[LogEvent | ReplayTruncated]:
        limit = self._settings.max_replay_events
        after: SearchAfter | None = None
        replayed = 0
        while not self._buffer.closed:
            size = min(self._page_size, limit - replayed)
            if size == 0:
                if (await self._store.search(self._replay_query(since, after, 1))).events:
                    yield ReplayTruncated(replayed)
                return
            page = await self._store.search(self._replay_query(since, after, size))
            for event in page.events:
                if self._buffer.closed:
                    return
                self._replayed.add(event.id)
                replayed += 1
                self._sent.inc()
                yield event
            if len(page.events) < size:
                return
            after = SearchAfter.of(page.events[-1])

    def _replay_query(self, since: datetime, after: SearchAfter | None, size: int) -> SearchQuery:
        spec = self._spec
        # total_cap=1: the replay never reports a total, so the store need not count.
        return SearchQuery(
            tenant_id=spec.tenant_id,
            node=spec.node,
            now=spec.now,
            start=since,
            size=size,
            order="asc",
            after=after,
            total_cap=1,
        )

    async def _live(self) -> AsyncIterator[TailFrame]:
        buffer = self._buffer
        heartbeat = self._settings.heartbeat_seconds
        while True:
            item = buffer.take()
            if item is None:
                if buffer.closed:
                    if self._ended is not None:
                        yield self._ended
                    return
                if not await buffer.wait(heartbeat):
                    yield KEEPALIVE
                continue
            if isinstance(item, Dropped):
                yield item
            elif item.id not in self._replayed:
                self._sent.inc()
                yield item

    async def _pump(self) -> None:
        """Decode, match and enqueue live batches; never waits for the client."""
        subject = _live_subject(self._spec.tenant_id)
        messages = self._bus.subscribe(subject)
        try:
            async for message in messages:
                self._enqueue(message.data)
            self._finish(TailEnded("bus_closed", "live events stopped: the event bus closed the subscription"))
        except DependencyUnavailable as exc:
            logger.warning("tail subscription to %s failed: %s", subject, exc)
            self._finish(TailEnded("bus_unavailable", f"live events stopped: {exc}"))
        except Exception:
            logger.exception("tail subscription to %s failed", subject)
            self._finish(TailEnded("tail_failed", "live events stopped after an internal error"))
        finally:
            if isinstance(messages, AsyncGenerator):
                await messages.aclose()  # pyright: ignore[reportUnknownMemberType]
            self._buffer.close()

    def _enqueue(self, data: bytes) -> None:
        tenant_id = self._spec.tenant_id
        try:
            batch = decode_parsed_batch(data)
        except msgspec.DecodeError:
            logger.warning("tail of tenant %s skipped an undecodable bus message", tenant_id)
            return
        if batch.tenant_id != tenant_id:
            return
        matches = self._spec.matcher
        buffer = self._buffer
        for event in batch.events:
            if event.tenant_id == tenant_id and matches(event) and not buffer.offer(event) and not buffer.closed:
                self._dropped.inc()
