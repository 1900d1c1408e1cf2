"""The EventBus contract, run against every adapter: the in-memory bus and NATS on a real embedded server.

Each test gets a fresh bus (and, for NATS, a fresh nats-server in tmp_path). `make_bus` builds another client
of the same bus, as another process would, with its own stream limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest

from mintlog.adapters.bus.embedded_nats import EmbeddedNatsServer
from mintlog.adapters.bus.memory import MemoryBroker, MemoryEventBus
from mintlog.adapters.bus.nats import NatsEventBus
from mintlog.errors import BusFull, BusUnavailable, DependencyUnavailable, PayloadTooLarge
from mintlog.ports.bus import BusConsumer, BusMessage, EventBus

MAX_PAYLOAD = 256 * 1024
LARGE_STREAM = 64 * 1024 * 1024


class MakeBus(Protocol):
    def __call__(self, *, stream_max_bytes: int = LARGE_STREAM) -> Awaitable[EventBus]: ...


@pytest.fixture(params=["memory", "nats"])
async def make_bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeBus]:
    """Builds started clients of one bus; all of them (and the server) are closed after the test."""
    buses: list[EventBus] = []
    server: EmbeddedNatsServer | None = None
    broker = MemoryBroker()
    if request.param == "nats":
        server = EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=MAX_PAYLOAD)
        await server.start()

    async def make(*, stream_max_bytes: int = LARGE_STREAM) -> EventBus:
        bus: EventBus
        if server is None:
            bus = MemoryEventBus(
                duplicate_window_seconds=60,
                max_payload_bytes=MAX_PAYLOAD,
                max_bytes=stream_max_bytes,
                broker=broker,
            )
        else:
            bus = NatsEventBus(
                [server.url],
                connect_timeout_seconds=5,
                publish_timeout_seconds=2,
                stream_max_bytes=stream_max_bytes,
                stream_max_age_seconds=3600,
                duplicate_window_seconds=60,
                replicas=1,
            )
        buses.append(bus)
        await bus.start()
        return bus

    try:
        yield make
    finally:
        for bus in buses:
            await bus.close()
        if server is not None:
            await server.stop()


@pytest.fixture
async def bus(make_bus: MakeBus) -> EventBus:
    return await make_bus()


async def fetch_all(consumer: BusConsumer, expected: int, timeout_seconds: float = 5.0) -> list[BusMessage]:
    """Fetch until `expected` messages arrived or the time is up."""
    messages: list[BusMessage] = []
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while len(messages) < expected:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            break
        messages += await consumer.fetch(expected - len(messages), min(remaining, 1.0))
    return messages


async def fill_until_full(bus: EventBus, payload_bytes: int = 1024) -> tuple[int, BusFull]:
    """Publish until the stream refuses: (messages accepted, the refusal); fails after 20 accepted."""
    for accepted in range(20):
        try:
            await bus.publish("logs.raw.t1", b"x" * payload_bytes)
        except BusFull as refusal:
            return accepted, refusal
    raise AssertionError("the stream never became full")


async def raw_consumer(bus: EventBus, durable: str = "indexer", ack_wait_seconds: float = 30.0) -> BusConsumer:
    return await bus.consumer("LOGS_RAW", durable, filter_subject="logs.raw.>", ack_wait_seconds=ack_wait_seconds)


async def test_publish_fetch_ack_roundtrip(bus: EventBus) -> None:
    ack = await bus.publish("logs.raw.t1", b"batch-1")
    assert ack.stream == "LOGS_RAW"
    assert ack.sequence >= 1
    assert not ack.duplicate

    consumer = await raw_consumer(bus)
    [message] = await fetch_all(consumer, 1)
    assert (message.subject, message.data, message.num_delivered) == ("logs.raw.t1", b"batch-1", 1)
    await message.ack()
    await consumer.close()

    again = await raw_consumer(bus)
    assert await again.fetch(10, 0.3) == []


async def test_sequences_increase_and_messages_arrive_in_order(bus: EventBus) -> None:
    acks = [await bus.publish("logs.raw.t1", f"m{i}".encode()) for i in range(5)]
    assert [a.sequence for a in acks] == sorted({a.sequence for a in acks})
    messages = await fetch_all(await raw_consumer(bus), 5)
    assert [m.data for m in messages] == [f"m{i}".encode() for i in range(5)]


async def test_duplicate_msg_id_is_stored_once(bus: EventBus) -> None:
    first = await bus.publish("logs.raw.t1", b"batch", msg_id="batch-42")
    second = await bus.publish("logs.raw.t1", b"batch", msg_id="batch-42")
    other = await bus.publish("logs.raw.t1", b"other", msg_id="batch-43")
    assert not first.duplicate
    assert second.duplicate
    assert second.sequence == first.sequence
    assert not other.duplicate

    consumer = await raw_consumer(bus)
    messages = await fetch_all(consumer, 2)
    assert [m.data for m in messages] == [b"batch", b"other"]
    assert await consumer.fetch(10, 0.3) == []


async def test_unacked_message_is_redelivered_after_ack_wait(bus: EventBus) -> None:
    await bus.publish("logs.raw.t1", b"slow")
    consumer = await raw_consumer(bus, ack_wait_seconds=1.0)
    [first] = await fetch_all(consumer, 1)
    assert first.num_delivered == 1
    assert await consumer.fetch(1, 0.3) == []  # not before ack_wait

    [again] = await fetch_all(consumer, 1, timeout_seconds=3.0)
    assert again.data == b"slow"
    assert again.num_delivered == 2
    await again.ack()
    assert await consumer.fetch(1, 1.5) == []


async def test_nak_redelivers(bus: EventBus) -> None:
    await bus.publish("logs.raw.t1", b"retry-me")
    consumer = await raw_consumer(bus)
    [first] = await fetch_all(consumer, 1)
    await first.nak()
    [second] = await fetch_all(consumer, 1, timeout_seconds=2.0)
    assert (second.data, second.num_delivered) == (b"retry-me", 2)

    await second.nak(delay_seconds=1.0)
    assert await consumer.fetch(1, 0.3) == []
    [third] = await fetch_all(consumer, 1, timeout_seconds=3.0)
    assert third.num_delivered == 3
    await third.ack()


async def test_term_stops_redelivery(bus: EventBus) -> None:
    await bus.publish("logs.raw.t1", b"poison")
    consumer = await raw_consumer(bus, ack_wait_seconds=1.0)
    [message] = await fetch_all(consumer, 1)
    await message.term()
    await message.ack()  # settling twice is a no-op
    assert await consumer.fetch(1, 1.8) == []


async def test_consumers_with_the_same_durable_split_the_work(make_bus: MakeBus) -> None:
    publisher = await make_bus()
    worker_a = await raw_consumer(await make_bus(), durable="pipeline")
    worker_b = await raw_consumer(await make_bus(), durable="pipeline")
    for i in range(20):
        await publisher.publish(f"logs.raw.t{i % 3}", f"event-{i}".encode())

    seen_by: dict[str, list[bytes]] = {"a": [], "b": []}
    deadline = asyncio.get_running_loop().time() + 10
    while len(seen_by["a"]) + len(seen_by["b"]) < 20 and asyncio.get_running_loop().time() < deadline:
        for name, worker in (("a", worker_a), ("b", worker_b)):
            for message in await worker.fetch(4, 0.5):
                seen_by[name].append(message.data)
                await message.ack()

    everything = seen_by["a"] + seen_by["b"]
    assert sorted(everything) == sorted(f"event-{i}".encode() for i in range(20))
    assert len(set(everything)) == 20
    assert seen_by["a"]
    assert seen_by["b"]


async def test_consumer_filter_subject(bus: EventBus) -> None:
    await bus.publish("alerts.events.t1", b"for-t1")
    await bus.publish("alerts.events.t2", b"for-t2")
    await bus.publish("alerts.events.t1", b"for-t1-again")

    only_t1 = await bus.consumer("ALERTS_EVENTS", "t1-only", filter_subject="alerts.events.t1", ack_wait_seconds=30)
    everything = await bus.consumer("ALERTS_EVENTS", "all", filter_subject="alerts.events.>", ack_wait_seconds=30)
    t1_messages = await fetch_all(only_t1, 2)
    all_messages = await fetch_all(everything, 3)
    assert await only_t1.fetch(10, 0.3) == []
    assert [m.data for m in t1_messages] == [b"for-t1", b"for-t1-again"]
    assert {m.subject for m in t1_messages} == {"alerts.events.t1"}
    assert [m.data for m in all_messages] == [b"for-t1", b"for-t2", b"for-t1-again"]


async def test_log_streams_are_work_queues_that_free_space_on_ack(make_bus: MakeBus) -> None:
    bus = await make_bus(stream_max_bytes=8 * 1024)
    accepted, refusal = await fill_until_full(bus)
    assert isinstance(refusal, BusFull)
    consumer = await raw_consumer(bus, durable="pipeline")
    for message in await fetch_all(consumer, accepted):
        await message.ack()
    deadline = asyncio.get_running_loop().time() + 5
    while True:  # acks are asynchronous: the space comes back shortly after
        try:
            await bus.publish("logs.raw.t1", b"room again")
            break
        except BusFull:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
    with pytest.raises(ValueError, match="work queue"):
        await bus.consumer("LOGS_RAW", "overlapping", filter_subject="logs.raw.t1", ack_wait_seconds=30)


async def wait_for_backlog(bus: EventBus, stream: str, messages: int) -> None:
    """Acks are asynchronous: wait until `stream` holds `messages` messages."""
    deadline = asyncio.get_running_loop().time() + 5
    while (await bus.backlog(stream)).messages != messages:
        assert asyncio.get_running_loop().time() < deadline, f"{stream} never held {messages} messages"
        await asyncio.sleep(0.05)


CLOCK_SLACK = timedelta(seconds=1)
"""The bus's clock (the server's) against the test's."""


async def publish_three_raw_batches(bus: EventBus) -> tuple[datetime, datetime]:
    """Publish `first`, then 0.3 s later `second` and `third` on `LOGS_RAW`; returns when the first and the
    second were sent."""
    first_sent = datetime.now(UTC)
    await bus.publish("logs.raw.t1", b"first")
    await asyncio.sleep(0.3)
    second_sent = datetime.now(UTC)
    await bus.publish("logs.raw.t1", b"second")
    await bus.publish("logs.raw.t2", b"third")
    return first_sent, second_sent


async def test_backlog_is_what_a_work_queue_consumer_has_not_acked(bus: EventBus) -> None:
    empty = await bus.backlog("LOGS_RAW")
    assert (empty.messages, empty.bytes, empty.oldest_stored_at) == (0, 0, None)

    first_sent, second_sent = await publish_three_raw_batches(bus)
    await bus.publish("logs.parsed.t1", b"elsewhere")

    held = await bus.backlog("LOGS_RAW")
    assert held.messages == 3
    assert held.last_sequence == empty.last_sequence + 3
    assert held.bytes >= len(b"firstsecondthird")
    assert held.oldest_stored_at is not None
    assert first_sent - CLOCK_SLACK <= held.oldest_stored_at < second_sent
    assert (await bus.backlog("LOGS_PARSED")).messages == 1

    consumer = await raw_consumer(bus, durable="pipeline")
    first, second = await fetch_all(consumer, 2)
    await first.ack()
    await wait_for_backlog(bus, "LOGS_RAW", 2)  # the delivered, unacked one still counts
    after_ack = await bus.backlog("LOGS_RAW")
    assert after_ack.oldest_stored_at is not None
    assert after_ack.oldest_stored_at >= second_sent - CLOCK_SLACK
    assert after_ack.oldest_stored_at > held.oldest_stored_at

    await second.ack()
    [third] = await fetch_all(consumer, 1)
    await third.ack()
    await wait_for_backlog(bus, "LOGS_RAW", 0)
    drained = await bus.backlog("LOGS_RAW")
    assert drained.oldest_stored_at is None
    assert drained.last_sequence == held.last_sequence  # what left the stream: 3 stored, 0 held


async def test_consumer_backlog_counts_only_what_the_consumer_was_not_handed_yet(bus: EventBus) -> None:
    assert await bus.consumer_backlog("LOGS_RAW", "pipeline") is None  # no such consumer yet
    first_sent, second_sent = await publish_three_raw_batches(bus)

    consumer = await raw_consumer(bus, durable="pipeline")
    fresh = await bus.consumer_backlog("LOGS_RAW", "pipeline")
    assert fresh is not None
    assert (fresh.undelivered, fresh.unacknowledged) == (3, 0)
    assert fresh.oldest_undelivered_at is not None
    assert first_sent - CLOCK_SLACK <= fresh.oldest_undelivered_at < second_sent

    [first] = await fetch_all(consumer, 1)  # handed over, not acked (as a batch waiting in archive buffers)
    handed = await bus.consumer_backlog("LOGS_RAW", "pipeline")
    assert handed is not None
    assert (handed.undelivered, handed.unacknowledged) == (2, 1)
    assert handed.delivered_sequence == fresh.delivered_sequence + 1
    assert handed.oldest_undelivered_at is not None
    assert handed.oldest_undelivered_at >= second_sent - CLOCK_SLACK
    assert (await bus.backlog("LOGS_RAW")).messages == 3  # the stream still holds all three

    rest = await fetch_all(consumer, 2)
    all_handed = await bus.consumer_backlog("LOGS_RAW", "pipeline")
    assert all_handed is not None
    assert (all_handed.undelivered, all_handed.unacknowledged, all_handed.oldest_undelivered_at) == (0, 3, None)
    assert all_handed.delivered_sequence == fresh.delivered_sequence + 3
    for message in [first, *rest]:
        await message.ack()
    await wait_for_backlog(bus, "LOGS_RAW", 0)


async def test_consumer_backlog_of_an_unknown_stream_is_unavailable(bus: EventBus) -> None:
    with pytest.raises(BusUnavailable):
        await bus.consumer_backlog("NO_SUCH_STREAM", "pipeline")


async def test_backlog_of_an_unknown_stream_or_a_closed_bus_is_unavailable(make_bus: MakeBus) -> None:
    bus = await make_bus()
    with pytest.raises(BusUnavailable):
        await bus.backlog("NO_SUCH_STREAM")
    await bus.close()
    with pytest.raises(BusUnavailable):
        await bus.backlog("LOGS_RAW")


async def test_subscribe_sees_live_messages_only(bus: EventBus) -> None:
    await bus.publish("logs.parsed.t1", b"before")
    live = bus.subscribe("logs.parsed.t1")
    assert isinstance(live, AsyncGenerator)
    try:
        next_message = asyncio.ensure_future(anext(live))
        # The subscription starts with the first iteration: publish until the reader sees something.
        for attempt in range(50):
            await bus.publish("logs.parsed.t2", b"other-tenant")
            await bus.publish("logs.parsed.t1", f"live-{attempt}".encode(), headers={"X-Attempt": str(attempt)})
            done, _ = await asyncio.wait({next_message}, timeout=0.1)
            if done:
                break
        message = await asyncio.wait_for(next_message, 1)
        assert message.subject == "logs.parsed.t1"
        assert message.data.startswith(b"live-")
        assert message.headers["X-Attempt"] == message.data.decode().removeprefix("live-")
        await message.ack()  # no-op for live messages
    finally:
        await live.aclose()


async def test_subscribe_with_wildcard(bus: EventBus) -> None:
    live = bus.subscribe("alerts.events.*")
    assert isinstance(live, AsyncGenerator)
    try:
        next_message = asyncio.ensure_future(anext(live))
        for _ in range(50):
            await bus.publish("alerts.events.t9", b"fired")
            done, _ = await asyncio.wait({next_message}, timeout=0.1)
            if done:
                break
        message = await asyncio.wait_for(next_message, 1)
        assert (message.subject, message.data) == ("alerts.events.t9", b"fired")
    finally:
        await live.aclose()


async def test_full_stream_raises_bus_full(make_bus: MakeBus) -> None:
    bus = await make_bus(stream_max_bytes=8 * 1024)
    _, refusal = await fill_until_full(bus)
    assert isinstance(refusal, DependencyUnavailable)
    assert refusal.retry_after_seconds > 0
    with pytest.raises(BusFull):
        await bus.publish("logs.raw.t1", b"x" * 1024)


async def test_headers_roundtrip(bus: EventBus) -> None:
    headers = {"Mintlog-Dead-Reason": "unparseable timestamp", "Mintlog-Tenant": "t1"}
    await bus.publish("deadletter.logs.raw.t1", b"bad", headers=headers, msg_id="dead-1")
    consumer = await bus.consumer("DEAD_LETTERS", "dlq", filter_subject="deadletter.>", ack_wait_seconds=30)
    [message] = await fetch_all(consumer, 1)
    assert message.headers.items() >= headers.items()


async def test_start_twice_is_idempotent_and_updates_stream_limits(make_bus: MakeBus) -> None:
    small = await make_bus(stream_max_bytes=8 * 1024)
    await small.start()
    await small.publish("logs.raw.t1", b"kept", msg_id="kept")
    accepted, _ = await fill_until_full(small)
    stored = 1 + accepted

    await make_bus(stream_max_bytes=LARGE_STREAM)  # another process starts with a larger limit
    await small.publish("logs.raw.t1", b"fits now")

    messages = await fetch_all(await raw_consumer(small), stored + 1)
    assert len(messages) == stored + 1
    assert messages[0].data == b"kept"  # updating the stream kept its messages
    assert messages[-1].data == b"fits now"


async def test_invalid_durable_name_is_refused(bus: EventBus) -> None:
    with pytest.raises(ValueError, match=r"indexer\.t1"):
        await bus.consumer("LOGS_RAW", "indexer.t1", filter_subject="logs.raw.>", ack_wait_seconds=30)


async def test_consumer_on_unknown_stream_is_unavailable(bus: EventBus) -> None:
    with pytest.raises(BusUnavailable):
        await bus.consumer("NO_SUCH_STREAM", "x", filter_subject="nothing.>", ack_wait_seconds=30)


async def test_publish_to_a_subject_without_stream_is_unavailable(bus: EventBus) -> None:
    with pytest.raises(BusUnavailable):
        await bus.publish("no.stream.here", b"lost?")


async def test_payload_limit(bus: EventBus) -> None:
    assert bus.max_payload_bytes == MAX_PAYLOAD
    await bus.publish("logs.raw.t1", b"x" * (MAX_PAYLOAD - 1024))
    with pytest.raises(PayloadTooLarge):
        await bus.publish("logs.raw.t1", b"x" * (MAX_PAYLOAD + 1))


async def test_ping_and_closed_bus(make_bus: MakeBus) -> None:
    bus = await make_bus()
    await bus.ping()
    await bus.close()
    with pytest.raises(BusUnavailable):
        await bus.ping()
    with pytest.raises(BusUnavailable):
        await bus.publish("logs.raw.t1", b"after close")


async def test_closing_the_bus_ends_live_subscriptions(make_bus: MakeBus) -> None:
    bus = await make_bus()
    live = bus.subscribe("logs.parsed.>")
    assert isinstance(live, AsyncGenerator)
    next_message = asyncio.ensure_future(anext(live))
    await asyncio.sleep(0.2)
    await bus.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(next_message, 2)
