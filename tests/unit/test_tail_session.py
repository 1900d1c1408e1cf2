"""One live tail on the in-memory bus and a fake store: filtering, replay hand-over, slow clients, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.auth import KeyRefusal
from mintlog.domain.events import LogEvent, ParsedBatch
from mintlog.domain.streams import encode_bus_message
from mintlog.errors import DatabaseUnavailable, DependencyUnavailable, StoreUnavailable, TooManyRequests
from mintlog.metrics import Metrics
from mintlog.ports.bus import BusMessage
from mintlog.ports.logstore import SearchAfter, SearchPage, SearchQuery
from mintlog.query import QueryWarning, parse
from mintlog.query.matcher import to_matcher
from mintlog.roles.api.logs.tail_buffer import Dropped
from mintlog.roles.api.logs.tail_hub import TailHub
from mintlog.roles.api.logs.tail_session import (
    KEEPALIVE,
    Keepalive,
    ReplayTruncated,
    TailEnded,
    TailFrame,
    TailSession,
    TailSpec,
)
from mintlog.settings import TailSettings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
QUIET = TailSettings(heartbeat_seconds=60, replay_settle_seconds=0)
KEY_HASH = "a" * 64


class Keys:
    """The verdicts `Authenticator.recheck` would give, set by the test; every check is recorded."""

    def __init__(self) -> None:
        self.refusals: dict[str, KeyRefusal] = {}
        self.checks: list[str] = []
        self.down = False

    async def recheck(self, key_hash: str) -> KeyRefusal | None:
        self.checks.append(key_hash)
        if self.down:
            raise DatabaseUnavailable("database unreachable")
        return self.refusals.get(key_hash)


def hub_of(max_per_tenant: int, metrics: Metrics, keys: Keys | None = None, recheck_seconds: float = 60) -> TailHub:
    return TailHub(max_per_tenant, metrics, keys or Keys(), recheck_seconds=recheck_seconds)


def event(event_id: str, *, level: str = "error", tenant: str = "t1", minutes_ago: float = 0) -> LogEvent:
    moment = NOW - timedelta(minutes=minutes_ago)
    return LogEvent(
        id=event_id,
        tenant_id=tenant,
        timestamp=moment,
        received_at=moment,
        service="api",
        level=level,  # type: ignore[arg-type]
        message=f"message of {event_id}",
        host="h1",
    )


class CountingBus(MemoryEventBus):
    """The in-memory bus, counting the live subscriptions currently open."""

    def __init__(self) -> None:
        super().__init__()
        self.open_subscriptions = 0

    async def subscribe(self, subject: str) -> AsyncIterator[BusMessage]:  # type: ignore[override]
        self.open_subscriptions += 1
        try:
            async for message in super().subscribe(subject):
                yield message
        finally:
            self.open_subscriptions -= 1


class FakeStore:
    """Searches a list of events like the real stores do: tenant, query, `start`, (timestamp, id) order, cursor."""

    def __init__(self, events: Sequence[LogEvent] = ()) -> None:
        self.events = list(events)
        self.queries: list[SearchQuery] = []
        self.before_search: Callable[[int], Awaitable[None]] | None = None
        self.down = False

    async def search(self, query: SearchQuery) -> SearchPage:
        self.queries.append(query)
        if self.before_search is not None:
            await self.before_search(len(self.queries))
        if self.down:
            raise StoreUnavailable("index unreadable")
        matches = to_matcher(query.node, query.now)
        found = sorted(
            (
                candidate
                for candidate in self.events
                if candidate.tenant_id == query.tenant_id
                and matches(candidate)
                and (query.start is None or candidate.timestamp >= query.start)
            ),
            key=SearchAfter.of,
            reverse=query.order == "desc",
        )
        if query.after is not None:
            after = query.after
            found = [
                e for e in found if (SearchAfter.of(e) > after) == (query.order == "asc") and SearchAfter.of(e) != after
            ]
        return SearchPage(events=found[: query.size], total=min(len(found), query.total_cap))


async def publish(
    bus: MemoryEventBus, *events: LogEvent, tenant: str = "t1", subject_tenant: str | None = None
) -> None:
    batch = ParsedBatch(batch_id=f"b-{events[0].id}", tenant_id=tenant, events=list(events))
    await bus.publish(f"logs.parsed.{subject_tenant or tenant}", encode_bus_message(batch))


def session_of(
    bus: MemoryEventBus,
    store: FakeStore | None = None,
    *,
    query: str = "",
    since: datetime | None = None,
    settings: TailSettings = QUIET,
    metrics: Metrics | None = None,
    hub: TailHub | None = None,
    key_hash: str = KEY_HASH,
    page_size: int = 500,
) -> TailSession:
    node = parse(query)
    spec = TailSpec(tenant_id="t1", node=node, matcher=to_matcher(node, NOW), now=NOW, since=since)
    metrics = metrics or Metrics()
    return TailSession(
        spec,
        bus=bus,
        store=store or FakeStore(),  # type: ignore[arg-type]
        settings=settings,
        metrics=metrics,
        lease=hub.acquire("t1", key_hash) if hub is not None else None,
        replay_page_size=page_size,
    )


async def next_frame(frames: AsyncIterator[TailFrame]) -> TailFrame:
    return await asyncio.wait_for(anext(frames), 5)


def label(frame: TailFrame) -> str:
    """A short name for a frame: the event id, or the frame kind."""
    match frame:
        case LogEvent():
            return frame.id
        case Dropped(count=count):
            return f"dropped:{count}"
        case ReplayTruncated(replayed=replayed):
            return f"truncated:{replayed}"
        case TailEnded(code=code):
            return f"ended:{code}"
        case Keepalive():
            return "keepalive"
        case QueryWarning(code=code):
            return f"warning:{code}"


async def labels(frames: AsyncIterator[TailFrame], count: int) -> list[str]:
    return [label(await next_frame(frames)) for _ in range(count)]


def sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


@pytest.fixture(name="bus")
async def bus_fixture() -> AsyncIterator[CountingBus]:
    bus = CountingBus()
    await bus.start()
    yield bus
    await bus.close()


async def test_only_matching_events_of_the_own_tenant_arrive(bus: CountingBus) -> None:
    frames = session_of(bus, query="level:error").frames()
    assert await next_frame(frames) == KEEPALIVE  # subscribed

    await publish(bus, event("info-1", level="info"), event("err-1"))
    await publish(bus, event("other-1", tenant="t2"), tenant="t2")
    await publish(bus, event("smuggled-1", tenant="t2"), tenant="t2", subject_tenant="t1")
    await publish(bus, event("err-2"))

    assert await labels(frames, 2) == ["err-1", "err-2"]
    await frames.aclose()


async def test_an_undecodable_bus_message_is_skipped(bus: CountingBus) -> None:
    frames = session_of(bus).frames()
    await next_frame(frames)
    await bus.publish("logs.parsed.t1", b"\xc1 not msgpack")
    await publish(bus, event("after-garbage"))
    assert await labels(frames, 1) == ["after-garbage"]
    await frames.aclose()


async def test_since_replays_stored_events_oldest_first_then_goes_live_without_duplicates(bus: CountingBus) -> None:
    store = FakeStore(
        [
            event("s-too-old", minutes_ago=30),
            event("s1", minutes_ago=10),
            event("s2", minutes_ago=5),
            event("s3", minutes_ago=5),  # same time as s2: the cursor orders ties by id
            event("s-info", level="info", minutes_ago=4),
            event("s-other", tenant="t2", minutes_ago=3),
            event("s4", minutes_ago=1),
        ]
    )

    async def during_replay(search_number: int) -> None:
        if search_number == 1:
            # Indexed while the replay runs, so published live too: s2 must come once, live-1 after the replay.
            await publish(bus, store.events[2], event("live-1"))

    store.before_search = during_replay
    frames = session_of(bus, store, query="level:error", since=NOW - timedelta(minutes=15), page_size=2).frames()

    assert await labels(frames, 6) == ["keepalive", "s1", "s2", "s3", "s4", "live-1"]
    await publish(bus, store.events[1], event("live-2"))  # a redelivered s1 is not sent again
    assert await labels(frames, 1) == ["live-2"]
    await frames.aclose()

    assert [query.order for query in store.queries] == ["asc", "asc", "asc"]
    assert {query.start for query in store.queries} == {NOW - timedelta(minutes=15)}
    assert [query.after.event_id if query.after else None for query in store.queries] == [None, "s2", "s4"]


async def test_the_replay_stops_at_its_limit_and_says_so(bus: CountingBus) -> None:
    store = FakeStore([event(f"s{number}", minutes_ago=10 - number) for number in range(5)])
    settings = TailSettings(heartbeat_seconds=60, replay_settle_seconds=0, max_replay_events=3)
    frames = session_of(bus, store, since=NOW - timedelta(hours=1), settings=settings, page_size=2).frames()
    assert await labels(frames, 5) == ["keepalive", "s0", "s1", "s2", "truncated:3"]
    await publish(bus, event("live-1"))
    assert await labels(frames, 1) == ["live-1"]
    await frames.aclose()


async def test_a_replay_that_fits_its_limit_exactly_is_not_truncated(bus: CountingBus) -> None:
    store = FakeStore([event(f"s{number}", minutes_ago=10 - number) for number in range(3)])
    settings = TailSettings(heartbeat_seconds=60, replay_settle_seconds=0, max_replay_events=3)
    frames = session_of(bus, store, since=NOW - timedelta(hours=1), settings=settings).frames()
    assert await next_frame(frames) == KEEPALIVE
    await publish(bus, event("live-1"))
    assert await labels(frames, 4) == ["s0", "s1", "s2", "live-1"]
    await frames.aclose()


async def test_a_failing_store_ends_the_tail_with_an_error_frame(bus: CountingBus) -> None:
    store = FakeStore()
    store.down = True
    frames = session_of(bus, store, since=NOW - timedelta(hours=1)).frames()
    assert await labels(frames, 2) == ["keepalive", "ended:store_unavailable"]
    with pytest.raises(StopAsyncIteration):
        await next_frame(frames)
    assert bus.open_subscriptions == 0


async def test_a_slow_client_loses_events_but_neither_the_bus_nor_other_clients_wait_for_it(bus: CountingBus) -> None:
    metrics = Metrics()
    settings = TailSettings(heartbeat_seconds=60, replay_settle_seconds=0, buffer_events=2)
    slow = session_of(bus, settings=settings, metrics=metrics).frames()
    fast = session_of(bus, settings=settings, metrics=metrics).frames()
    assert await next_frame(slow) == KEEPALIVE
    assert await next_frame(fast) == KEEPALIVE

    received: list[str] = []
    for number in range(5):
        await publish(bus, event(f"e{number}"))
        received.append(label(await next_frame(fast)))
    assert received == ["e0", "e1", "e2", "e3", "e4"]

    for _ in range(1000):  # the slow tail's subscriber keeps consuming: it skips what does not fit
        if sample(metrics, "mintlog_tail_events_dropped_total") >= 3:
            break
        await asyncio.sleep(0)
    assert sample(metrics, "mintlog_tail_events_dropped_total") == 3

    assert await labels(slow, 3) == ["e0", "e1", "dropped:3"]
    await publish(bus, event("e5"))
    assert await labels(slow, 1) == ["e5"]
    assert sample(metrics, "mintlog_tail_events_sent_total") == 5 + 3
    await slow.aclose()
    await fast.aclose()


async def test_a_quiet_tail_sends_keepalives(bus: CountingBus) -> None:
    settings = TailSettings(heartbeat_seconds=0.01, replay_settle_seconds=0)
    frames = session_of(bus, settings=settings).frames()
    assert await labels(frames, 3) == ["keepalive", "keepalive", "keepalive"]
    await frames.aclose()


def tail_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("tail-") and not task.done()]


async def test_closing_the_stream_leaves_no_subscription_task_or_slot_behind(bus: CountingBus) -> None:
    metrics = Metrics()
    hub = hub_of(1, metrics)
    frames = session_of(bus, hub=hub, metrics=metrics).frames()
    await next_frame(frames)
    assert bus.open_subscriptions == 1
    assert tail_tasks()
    assert sample(metrics, "mintlog_tails_open") == 1

    await frames.aclose()  # what the server does when the client goes away

    assert bus.open_subscriptions == 0
    assert tail_tasks() == []
    assert hub.open_tails("t1") == 0
    assert sample(metrics, "mintlog_tails_open") == 0
    hub.acquire("t1", KEY_HASH).release()  # the slot is free again


async def test_close_from_outside_cleans_up_a_stream_that_is_never_resumed(bus: CountingBus) -> None:
    hub = hub_of(1, Metrics())
    session = session_of(bus, hub=hub)
    frames = session.frames()
    await next_frame(frames)
    await publish(bus, event("pending"))

    await session.close()  # the response's background task, when the client vanished mid-write
    await session.close()

    assert bus.open_subscriptions == 0
    assert tail_tasks() == []
    assert hub.open_tails("t1") == 0
    await frames.aclose()


async def test_a_cancelled_reader_cleans_up(bus: CountingBus) -> None:
    hub = hub_of(1, Metrics())
    frames = session_of(bus, hub=hub).frames()
    await next_frame(frames)

    async def read_one() -> TailFrame:
        return await anext(frames)

    reader = asyncio.create_task(read_one())
    await asyncio.sleep(0)
    reader.cancel()  # the server cancels the response when the client disconnects while it waits
    await asyncio.wait({reader})
    for _ in range(100):
        if bus.open_subscriptions == 0:
            break
        await asyncio.sleep(0)
    assert bus.open_subscriptions == 0
    assert tail_tasks() == []
    assert hub.open_tails("t1") == 0


async def test_a_closed_bus_ends_the_tail_with_an_error_frame(bus: CountingBus) -> None:
    frames = session_of(bus).frames()
    await next_frame(frames)
    await bus.close()
    assert await labels(frames, 1) == ["ended:bus_closed"]
    with pytest.raises(StopAsyncIteration):
        await next_frame(frames)


async def test_the_hub_caps_tails_per_tenant_and_frees_slots() -> None:
    hub = hub_of(2, Metrics())
    first, _second = hub.acquire("t1", KEY_HASH), hub.acquire("t1", KEY_HASH)
    with pytest.raises(TooManyRequests) as refused:
        hub.acquire("t1", KEY_HASH)
    assert refused.value.status == 429
    assert refused.value.code == "too_many_tails"
    assert refused.value.extra["limit"] == 2
    hub.acquire("t2", KEY_HASH).release()  # other tenants have their own slots
    first.release()
    first.release()  # idempotent: frees one slot only
    hub.acquire("t1", KEY_HASH)
    with pytest.raises(TooManyRequests):
        hub.acquire("t1", KEY_HASH)


async def test_shutdown_ends_open_tails_and_refuses_new_ones(bus: CountingBus) -> None:
    hub = hub_of(5, Metrics())
    frames = session_of(bus, hub=hub).frames()
    await next_frame(frames)
    await publish(bus, event("queued"))

    async def read_to_the_end() -> list[str]:
        return [label(frame) async for frame in frames]

    reader = asyncio.create_task(read_to_the_end())
    await asyncio.wait_for(hub.close(timeout_seconds=5), 10)
    assert await asyncio.wait_for(reader, 5) == ["queued", "ended:server_shutting_down"]  # queued, then why it ends
    assert bus.open_subscriptions == 0
    with pytest.raises(DependencyUnavailable):
        hub.acquire("t1", KEY_HASH)
