"""The pipeline workers on the in-memory bus: normalize, index, dead-letter, retry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.domain.events import LogEvent, RawBatch
from mintlog.domain.streams import decode_parsed_batch, encode_bus_message
from mintlog.errors import StoreDiskFailure, StoreUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.aggregation import AggregateQuery, AggregateResult
from mintlog.ports.bus import BusConsumer, BusMessage
from mintlog.ports.logstore import SearchPage, SearchQuery
from mintlog.roles.pipeline.indexer import IndexerWorker
from mintlog.roles.pipeline.normalizer import NormalizerWorker
from mintlog.settings import IndexerSettings, IngestSettings, PipelineSettings

PIPELINE = PipelineSettings(max_deliveries=3, ack_wait_seconds=30)
INDEXER = IndexerSettings(flush_interval_ms=50, max_batch_events=10_000, fetch_batch=64)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class FakeStore:
    """Records writes; can be down, or refuse events whose message contains 'poison'."""

    def __init__(self) -> None:
        self.events: dict[str, LogEvent] = {}
        self.writes: list[int] = []
        self.down = False
        self.refuse_poison = True
        self.refusals = 0

    async def write(self, events: Sequence[LogEvent]) -> None:
        if self.down:
            raise StoreUnavailable("store down")
        if self.refuse_poison and any("poison" in event.message for event in events):
            self.refusals += 1
            raise StoreUnavailable("HTTP 503 unavailable_shards_exception: primary shard is not active")
        self.writes.append(len(events))
        for event in events:
            self.events[event.id] = event

    async def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("store down")

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def aggregate(self, query: AggregateQuery) -> AggregateResult:
        raise AssertionError("the pipeline never aggregates")

    async def drop_partitions_before(self, tenant_id: str, day: date, *, basis: str = "event_time") -> list[str]:
        raise AssertionError("the pipeline's indexer never drops partitions")

    async def search(self, query: SearchQuery) -> SearchPage:
        raise NotImplementedError


def raw_batch(batch_id: str, messages: list[str], tenant: str = "t1") -> bytes:
    return encode_bus_message(
        RawBatch(
            batch_id=batch_id,
            tenant_id=tenant,
            received_at=NOW,
            source="http",
            events=[{"message": message, "level": "WARNING", "service": "svc"} for message in messages],
        )
    )


async def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture
async def bus() -> AsyncIterator[MemoryEventBus]:
    memory_bus = MemoryEventBus()
    await memory_bus.start()
    yield memory_bus
    await memory_bus.close()


async def drain(bus: MemoryEventBus, stream: str, subject: str) -> list[BusMessage]:
    consumer = await bus.consumer(stream, f"test-{stream}", filter_subject=subject, ack_wait_seconds=30)
    messages = await consumer.fetch(100, 0.2)
    for message in messages:
        await message.ack()
    await consumer.close()
    return messages


def normalizer(bus: MemoryEventBus, metrics: Metrics) -> NormalizerWorker:
    return NormalizerWorker(
        bus=bus,
        settings=PIPELINE,
        limits=IngestSettings(),
        metrics=metrics,
        grace_seconds=2,
        retry_delay_seconds=0.01,
    )


async def test_normalizer_publishes_normalized_events_with_stable_ids(bus: MemoryEventBus) -> None:
    metrics = Metrics()
    worker = normalizer(bus, metrics)
    await bus.publish("logs.raw.t1", raw_batch("b1", ["one", "two"]), msg_id="b1:0")
    await worker.start()
    try:
        await wait_until(lambda: metrics.pipeline_events._value.get() == 2)  # pyright: ignore[reportPrivateUsage]
    finally:
        await worker.stop()
    parsed = await drain(bus, "LOGS_PARSED", "logs.parsed.>")
    assert [message.subject for message in parsed] == ["logs.parsed.t1"]
    events = decode_parsed_batch(parsed[0].data).events
    assert [(event.id, event.level, event.message) for event in events] == [
        ("b1-00000", "warn", "one"),
        ("b1-00001", "warn", "two"),
    ]


async def test_a_redelivered_raw_batch_is_not_published_twice(bus: MemoryEventBus) -> None:
    metrics = Metrics()
    worker = normalizer(bus, metrics)
    payload = raw_batch("b2", ["again"])
    await bus.publish("logs.raw.t1", payload, msg_id="first-delivery")
    await bus.publish("logs.raw.t1", payload, msg_id="as-if-redelivered")
    await worker.start()
    try:
        await wait_until(lambda: metrics.pipeline_events._value.get() == 2)  # pyright: ignore[reportPrivateUsage]
    finally:
        await worker.stop()
    assert len(await drain(bus, "LOGS_PARSED", "logs.parsed.>")) == 1


async def test_undecodable_messages_are_dead_lettered_and_the_rest_flow(bus: MemoryEventBus) -> None:
    metrics = Metrics()
    worker = normalizer(bus, metrics)
    await bus.publish("logs.raw.t1", b"\xff not msgpack", msg_id="bad")
    await bus.publish("logs.raw.t1", raw_batch("b3", ["fine"]), msg_id="good")
    await worker.start()
    try:
        await wait_until(lambda: metrics.pipeline_events._value.get() == 1)  # pyright: ignore[reportPrivateUsage]
    finally:
        await worker.stop()
    dead = await drain(bus, "DEAD_LETTERS", "deadletter.>")
    assert [message.subject for message in dead] == ["deadletter.logs.raw.t1"]
    assert dead[0].data == b"\xff not msgpack"
    assert dead[0].headers["Mintlog-Dead-Code"] == "undecodable"
    assert "cannot be decoded" in dead[0].headers["Mintlog-Dead-Reason"]
    assert dead[0].headers["Mintlog-Original-Subject"] == "logs.raw.t1"
    assert metrics.dead_letters.labels("normalizer", "undecodable")._value.get() == 1  # pyright: ignore[reportPrivateUsage]
    assert len(await drain(bus, "LOGS_PARSED", "logs.parsed.>")) == 1


def indexer(bus: MemoryEventBus, store: FakeStore, metrics: Metrics) -> IndexerWorker:
    return IndexerWorker(
        bus=bus,
        store=store,
        pipeline=PIPELINE,
        settings=INDEXER,
        metrics=metrics,
        grace_seconds=2,
        retry_delay_seconds=0.01,
    )


async def publish_parsed(bus: MemoryEventBus, batch_id: str, messages: list[str]) -> int:
    """Publish the normalized `messages` as one parsed batch; returns its size in bytes."""
    from mintlog.domain.normalize import normalize_batch

    raw = RawBatch(
        batch_id=batch_id,
        tenant_id="t1",
        received_at=NOW,
        source="http",
        events=[{"message": message} for message in messages],
    )
    from mintlog.domain.events import ParsedBatch

    events = normalize_batch(raw, default_service="s", default_host="h")
    payload = encode_bus_message(ParsedBatch(batch_id=batch_id, tenant_id="t1", events=events))
    await bus.publish("logs.parsed.t1", payload, msg_id=f"parsed:{batch_id}")
    return len(payload)


async def test_indexer_writes_many_messages_in_one_commit(bus: MemoryEventBus) -> None:
    store = FakeStore()
    for number in range(10):
        await publish_parsed(bus, f"b{number}", [f"event {number}"])
    worker = indexer(bus, store, Metrics())
    await worker.start()
    try:
        await wait_until(lambda: len(store.events) == 10)
    finally:
        await worker.stop()
    assert store.writes == [10]


async def test_indexer_retries_through_a_store_outage_without_dead_lettering(bus: MemoryEventBus) -> None:
    store = FakeStore()
    store.down = True
    await publish_parsed(bus, "b1", ["survives the outage"])
    worker = indexer(bus, store, Metrics())
    await worker.start()
    try:
        await asyncio.sleep(0.5)  # many more attempts than max_deliveries
        assert store.events == {}
        store.down = False
        await wait_until(lambda: len(store.events) == 1)
    finally:
        await worker.stop()
    assert await drain(bus, "DEAD_LETTERS", "deadletter.>") == []


async def test_indexer_retries_a_message_that_fails_transiently_while_the_store_is_up_and_never_loses_it(
    bus: MemoryEventBus,
) -> None:
    """A restarted OpenSearch answers its health check while some shards still recover: writes to them fail
    with a 503 many times over. Those events are retried until stored, never dead-lettered (they were lost)."""
    store = FakeStore()
    metrics = Metrics()
    await publish_parsed(bus, "good1", ["fine"])
    await publish_parsed(bus, "bad", ["poison pill"])
    await publish_parsed(bus, "good2", ["also fine"])
    worker = indexer(bus, store, metrics)
    await worker.start()
    try:
        await wait_until(lambda: len(store.events) == 2)
        await wait_until(lambda: store.refusals > 2 * PIPELINE.max_deliveries)
        assert metrics.store_write_failed._value.get() == 1  # pyright: ignore[reportPrivateUsage]
        assert await drain(bus, "DEAD_LETTERS", "deadletter.>") == []
        store.refuse_poison = False
        await wait_until(lambda: len(store.events) == 3)
    finally:
        await worker.stop()
    assert {event.message for event in store.events.values()} == {"fine", "poison pill", "also fine"}
    assert metrics.store_write_failed._value.get() == 0  # pyright: ignore[reportPrivateUsage]
    assert await drain(bus, "DEAD_LETTERS", "deadletter.>") == []


async def test_indexer_commits_its_buffer_when_stopped(bus: MemoryEventBus) -> None:
    store = FakeStore()
    slow = IndexerWorker(
        bus=bus,
        store=store,
        pipeline=PIPELINE,
        settings=IndexerSettings(flush_interval_ms=60_000, max_batch_events=1_000_000, fetch_batch=64),
        metrics=Metrics(),
        grace_seconds=2,
    )
    await publish_parsed(bus, "b1", ["buffered"])
    await slow.start()
    await asyncio.sleep(0.3)
    assert store.events == {}
    await slow.stop()
    assert len(store.events) == 1


class UnstorableStore(FakeStore):
    async def write(self, events: Sequence[LogEvent]) -> None:
        if any("unstorable" in event.message for event in events):
            raise ValueError("cannot encode this event")
        await super().write(events)


async def test_indexer_dead_letters_an_unstorable_message_at_once(bus: MemoryEventBus) -> None:
    store = UnstorableStore()
    metrics = Metrics()
    await publish_parsed(bus, "ok", ["fine"])
    await publish_parsed(bus, "never", ["unstorable event"])
    worker = indexer(bus, store, metrics)
    await worker.start()
    try:
        await wait_until(lambda: metrics.dead_letters.labels("indexer", "unstorable")._value.get() == 1)  # pyright: ignore[reportPrivateUsage]
    finally:
        await worker.stop()
    dead = await drain(bus, "DEAD_LETTERS", "deadletter.>")
    assert dead[0].headers["Mintlog-Deliveries"] == "1"
    assert [event.message for event in store.events.values()] == ["fine"]


class FullDiskStore(FakeStore):
    """Answers its ping (the disk is there) but its disk refuses every write while `full`, counting them."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.refused = 0

    async def write(self, events: Sequence[LogEvent]) -> None:
        if self.full:
            self.refused += 1
            raise StoreDiskFailure("the disk of the store refused a write (No space left on device)")
        await super().write(events)


async def test_indexer_retries_writes_a_full_disk_refused_without_dead_lettering(bus: MemoryEventBus) -> None:
    store = FullDiskStore()
    store.full = True
    metrics = Metrics()
    for number in range(3):
        await publish_parsed(bus, f"b{number}", [f"kept {number}"])
    worker = indexer(bus, store, metrics)
    await worker.start()
    try:
        await wait_until(lambda: store.refused > 3 * PIPELINE.max_deliveries)
        assert metrics.store_write_failed._value.get() == 1  # pyright: ignore[reportPrivateUsage]
        store.full = False
        await wait_until(lambda: len(store.events) == 3)
    finally:
        await worker.stop()
    assert metrics.store_write_failed._value.get() == 0  # pyright: ignore[reportPrivateUsage]
    assert await drain(bus, "DEAD_LETTERS", "deadletter.>") == []


class GatedStore(FakeStore):
    """Holds every write until `gate` is set, counting the writes in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def write(self, events: Sequence[LogEvent]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            await super().write(events)
        finally:
            self.in_flight -= 1


def one_message_per_write_indexer(bus: MemoryEventBus, store: FakeStore, concurrent_writes: int) -> IndexerWorker:
    return IndexerWorker(
        bus=bus,
        store=store,
        pipeline=PIPELINE,
        settings=IndexerSettings(flush_interval_ms=10, max_batch_events=1, fetch_batch=1),
        metrics=Metrics(),
        grace_seconds=2,
        concurrent_writes=concurrent_writes,
    )


async def test_concurrent_writes_stay_bounded_and_ack_only_what_was_written(bus: MemoryEventBus) -> None:
    store = GatedStore()
    worker = one_message_per_write_indexer(bus, store, concurrent_writes=2)
    for number in range(5):
        await publish_parsed(bus, f"c{number}", [f"event {number}"])
    await worker.start()
    try:
        await wait_until(lambda: store.in_flight == 2)
        await asyncio.sleep(0.2)
        assert store.in_flight == 2  # the third flush waits for a free slot
        assert store.events == {}
        store.gate.set()
        await wait_until(lambda: len(store.events) == 5)
    finally:
        await worker.stop()
    assert store.most_in_flight == 2
    # Every message was acked once written: nothing is delivered again.
    consumer = await bus.consumer("LOGS_PARSED", "indexer", filter_subject="logs.parsed.>", ack_wait_seconds=30)
    assert await consumer.fetch(10, 0.2) == []
    await consumer.close()


async def test_stop_waits_for_the_writes_in_flight(bus: MemoryEventBus) -> None:
    store = GatedStore()
    worker = one_message_per_write_indexer(bus, store, concurrent_writes=3)
    await publish_parsed(bus, "s1", ["in flight at stop"])
    await worker.start()
    await wait_until(lambda: store.in_flight == 1)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()
    store.gate.set()
    await stopping
    assert len(store.events) == 1


async def test_writes_in_flight_hold_at_most_max_inflight_bytes_whatever_the_fetch_size(
    bus: MemoryEventBus,
) -> None:
    """A pipeline process's memory follows what its indexer holds: one fetch of many large messages is split
    into writes of a share of `max_inflight_bytes` each, not buffered into one write of the whole fetch."""
    events_per_message = 50
    sizes = [
        await publish_parsed(bus, f"m{number}", [f"event {number:02}.{index:02} " + "x" * 200 for index in range(50)])
        for number in range(40)
    ]
    message_bytes = max(sizes)
    limit = 6 * message_bytes
    store = GatedStore()
    worker = IndexerWorker(
        bus=bus,
        store=store,
        pipeline=PIPELINE,
        settings=IndexerSettings(
            flush_interval_ms=200, max_batch_events=1_000_000, max_inflight_bytes=limit, fetch_batch=64
        ),
        metrics=Metrics(),
        grace_seconds=2,
        concurrent_writes=2,
    )
    written: list[int] = []
    write = store.write

    async def counting_write(events: Sequence[LogEvent]) -> None:
        written.append(len(events))
        await write(events)

    store.write = counting_write  # type: ignore[method-assign]
    await worker.start()
    try:
        await wait_until(lambda: store.in_flight >= 1)
        await asyncio.sleep(0.2)
        held = sum(written) * message_bytes / events_per_message
        in_flight = store.in_flight
        store.gate.set()
        await wait_until(lambda: len(store.events) == 40 * events_per_message)
    finally:
        store.gate.set()
        await worker.stop()
    # Both writes in flight, and nothing else taken: at most the limit, each share over by one message at most.
    assert in_flight == 2
    assert held <= limit + 2 * message_bytes
    assert max(written) * message_bytes / events_per_message <= limit / 2 + message_bytes


class FetchSizes(MemoryEventBus):
    """The in-memory bus, recording how many messages each pull of a consumer asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    async def consumer(self, stream: str, durable: str, *, filter_subject: str, ack_wait_seconds: float) -> BusConsumer:
        inner = await super().consumer(
            stream, durable, filter_subject=filter_subject, ack_wait_seconds=ack_wait_seconds
        )
        asked = self.asked

        class Recording:
            async def fetch(self, max_messages: int, timeout_seconds: float) -> list[BusMessage]:
                asked.append(max_messages)
                return await inner.fetch(max_messages, timeout_seconds)

            async def close(self) -> None:
                await inner.close()

        return Recording()


async def test_a_pull_takes_about_one_share_of_max_inflight_bytes_not_fetch_batch() -> None:
    bus = FetchSizes()
    await bus.start()
    sizes = [
        await publish_parsed(bus, f"f{number}", [f"event {number:02}.{index:02} " + "x" * 200 for index in range(50)])
        for number in range(30)
    ]
    store = FakeStore()
    worker = IndexerWorker(
        bus=bus,
        store=store,
        pipeline=PIPELINE,
        settings=IndexerSettings(flush_interval_ms=50, max_inflight_bytes=6 * max(sizes), fetch_batch=64),
        metrics=Metrics(),
        grace_seconds=2,
        concurrent_writes=2,
    )
    await worker.start()
    try:
        await wait_until(lambda: len(store.events) == 30 * 50)
    finally:
        await worker.stop()
        await bus.close()
    # A share is 3 of the largest messages: the first pull assumes the largest the bus carries (1 message), the
    # next ones go by the size of those seen, rounding up (the messages are a little smaller than the largest).
    assert bus.asked[0] == 1
    assert max(bus.asked) <= 4


def test_concurrent_writes_default_to_the_store_s_preference() -> None:
    from mintlog.roles.pipeline.role import indexer_concurrent_writes
    from mintlog.settings import Settings, StoreSettings

    assert indexer_concurrent_writes(Settings()) == 1
    assert indexer_concurrent_writes(Settings(store=StoreSettings(url="tantivy:///data/index"))) == 1
    assert indexer_concurrent_writes(Settings(store=StoreSettings(url="http://127.0.0.1:9200"))) == 4
    assert indexer_concurrent_writes(Settings(indexer=IndexerSettings(concurrent_writes=2))) == 2


def test_max_inflight_bytes_default_to_the_store_s_preference() -> None:
    from mintlog.roles.pipeline.role import indexer_max_inflight_bytes
    from mintlog.settings import Settings, StoreSettings

    assert indexer_max_inflight_bytes(Settings()) == 16 * 1024 * 1024
    assert indexer_max_inflight_bytes(Settings(store=StoreSettings(url="http://127.0.0.1:9200"))) == 8 * 1024 * 1024
    assert indexer_max_inflight_bytes(Settings(indexer=IndexerSettings(max_inflight_bytes=1 << 20))) == 1 << 20
