"""The backlog gate: when ingest refuses because the pipeline is behind, and when it accepts again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.errors import IngestBacklogged
from mintlog.metrics import Metrics
from mintlog.roles.ingest.backlog import (
    RETRY_AFTER_SECONDS,
    Backlog,
    BacklogGate,
    BacklogLimits,
    DrainRate,
    expected_wait_seconds,
    is_overloaded,
)
from mintlog.roles.ingest.service import IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore

OFF = BacklogLimits()
TEN_SECONDS = BacklogLimits(max_seconds=10)
HUNDRED_MESSAGES = BacklogLimits(max_messages=100)


@pytest.mark.parametrize(
    ("backlog", "limits", "was_overloaded", "expected"),
    [
        (Backlog(10**9, 10**9), OFF, False, False),
        (Backlog(0, 10.0), TEN_SECONDS, False, False),
        (Backlog(0, 10.1), TEN_SECONDS, False, True),
        (Backlog(10**6, 9.0), TEN_SECONDS, False, False),
        (Backlog(100, 0.0), HUNDRED_MESSAGES, False, False),
        (Backlog(101, 0.0), HUNDRED_MESSAGES, False, True),
        (Backlog(101, 0.0), BacklogLimits(max_seconds=10, max_messages=100), False, True),
        (Backlog(0, 11.0), BacklogLimits(max_seconds=10, max_messages=100), False, True),
        # Hysteresis: once refusing, it accepts again only below 80 % of every limit.
        (Backlog(0, 9.0), TEN_SECONDS, True, True),
        (Backlog(0, 8.1), TEN_SECONDS, True, True),
        (Backlog(0, 7.9), TEN_SECONDS, True, False),
        (Backlog(81, 0.0), HUNDRED_MESSAGES, True, True),
        (Backlog(79, 0.0), HUNDRED_MESSAGES, True, False),
        (Backlog(79, 9.0), BacklogLimits(max_seconds=10, max_messages=100), True, True),
        (Backlog(90, 1.0), BacklogLimits(max_seconds=10, max_messages=100), True, True),
        (Backlog(79, 7.9), BacklogLimits(max_seconds=10, max_messages=100), True, False),
    ],
)
def test_decision(backlog: Backlog, limits: BacklogLimits, was_overloaded: bool, expected: bool) -> None:
    assert is_overloaded(backlog, limits, was_overloaded=was_overloaded) is expected


def test_the_expected_wait_counts_as_the_delay() -> None:
    assert is_overloaded(Backlog(0, 1.0, expected_seconds=10.5), TEN_SECONDS, was_overloaded=False)
    assert is_overloaded(Backlog(0, 1.0, expected_seconds=8.5), TEN_SECONDS, was_overloaded=True)
    assert not is_overloaded(Backlog(0, 1.0, expected_seconds=7.5), TEN_SECONDS, was_overloaded=True)


def test_the_drain_rate_is_measured_only_over_a_busy_window() -> None:
    rate = DrainRate(window_seconds=5)
    rate.observe(0.0, held=100, last_sequence=1000)
    rate.observe(3.0, held=130, last_sequence=1090)
    assert rate.per_second() is None  # not a whole window yet
    rate.observe(5.0, held=150, last_sequence=1150)
    assert rate.per_second() == (150 - 50) / 5  # 150 stored, 50 more held: 100 left in 5 s
    rate.observe(6.0, held=0, last_sequence=1160)
    assert rate.per_second() is None  # it ran empty: the pipeline waited for work
    rate.observe(12.0, held=10, last_sequence=1300)
    assert rate.per_second() is None  # the window starts empty
    rate.observe(18.0, held=20, last_sequence=1400)
    assert rate.per_second() == (100 - 10) / 6
    rate.observe(30.0, held=10, last_sequence=1400)
    rate.observe(36.0, held=10, last_sequence=1400)
    assert rate.per_second() == 0  # a stalled consumer


def test_the_expected_wait_is_that_of_the_slower_stage() -> None:
    assert expected_wait_seconds(0, None, 0, None) == 0
    assert expected_wait_seconds(100, 50.0, 0, 20.0) == 100 / 20  # the indexer must take the raw ones too
    assert expected_wait_seconds(100, 10.0, 50, 100.0) == 100 / 10
    assert expected_wait_seconds(100, None, 50, 0.0) == 0  # unknown or stalled: the oldest age covers it


def test_limits_come_from_the_ingest_settings() -> None:
    assert BacklogLimits.of(IngestSettings()) == BacklogLimits(max_seconds=300.0, max_messages=0)
    assert BacklogLimits.of(IngestSettings(max_backlog_seconds=0, max_backlog_messages=7)) == BacklogLimits(0, 7)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def bus() -> MemoryEventBus:
    bus = MemoryEventBus()
    await bus.start()
    return bus


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_the_gate_closes_past_the_age_limit_and_opens_below_80_percent(bus: MemoryEventBus) -> None:
    clock, metrics = Clock(), Metrics()
    gate = BacklogGate(bus, BacklogLimits(max_seconds=10), metrics, clock=clock)
    await bus.publish("logs.raw.t1", b"first")
    await bus.publish("logs.parsed.t1", b"parsed")
    await gate.refresh()
    assert not gate.overloaded
    gate.check()

    clock.now += timedelta(seconds=11)
    await gate.refresh()
    assert gate.overloaded
    with pytest.raises(IngestBacklogged) as refused:
        gate.check()
    assert refused.value.status == 503
    assert refused.value.code == "backlog_exceeded"
    assert refused.value.extra == {"retry_after_seconds": RETRY_AFTER_SECONDS}
    assert "(limit 10 s), 2 batches waiting" in refused.value.detail
    assert sample(metrics, "mintlog_ingest_backlog_refusing") == 1
    assert sample(metrics, "mintlog_ingest_backlog_messages", stream="LOGS_RAW") == 1
    assert sample(metrics, "mintlog_ingest_backlog_messages", stream="LOGS_PARSED") == 1
    assert (sample(metrics, "mintlog_ingest_backlog_oldest_seconds", stream="LOGS_RAW") or 0) > 10

    # The pipeline takes the old messages; what is left is 9 s old: under the limit but not under 80 % of it.
    consumer = await bus.consumer("LOGS_RAW", "pipeline", filter_subject="logs.raw.>", ack_wait_seconds=30)
    for message in await consumer.fetch(10, 0.1):
        await message.ack()
    consumer = await bus.consumer("LOGS_PARSED", "indexer", filter_subject="logs.parsed.>", ack_wait_seconds=30)
    for message in await consumer.fetch(10, 0.1):
        await message.ack()
    await bus.publish("logs.raw.t1", b"newer")
    clock.now += timedelta(seconds=9)
    await gate.refresh()
    assert gate.overloaded

    clock.now = datetime.now(UTC) + timedelta(seconds=7.5)
    await gate.refresh()
    assert not gate.overloaded
    gate.check()
    assert sample(metrics, "mintlog_ingest_backlog_refusing") == 0
    assert sample(metrics, "mintlog_ingest_backlog_messages", stream="LOGS_PARSED") == 0


async def test_the_gate_closes_on_the_expected_wait_before_the_oldest_is_that_old(bus: MemoryEventBus) -> None:
    """Intake at 10 batches/s, indexing at 2: the backlog grows by 8 a second. The age alone would wait until the
    oldest is 10 s old, when 80 batches wait (40 s of indexing); the expected wait closes the gate much earlier."""
    metrics = Metrics()
    monotonic = [0.0]
    gate = BacklogGate(bus, TEN_SECONDS, metrics, monotonic=lambda: monotonic[0])
    consumer = await bus.consumer("LOGS_RAW", "pipeline", filter_subject="logs.raw.>", ack_wait_seconds=30)
    await bus.publish("logs.raw.t1", b"first")
    await gate.refresh()
    second = 0
    while not gate.overloaded:
        second += 1
        assert second < 10, "the gate waited for the age limit"
        for _ in range(10):
            await bus.publish("logs.raw.t1", b"batch")
        for message in await consumer.fetch(2, 0.1):
            await message.ack()
        monotonic[0] = float(second)
        await gate.refresh()
    last = gate.last_backlog
    assert last is not None
    assert last.oldest_seconds < 10
    assert last.expected_seconds > 10
    assert sample(metrics, "mintlog_ingest_backlog_expected_wait_seconds") == last.expected_seconds


async def test_batches_the_normalizer_holds_for_the_archive_do_not_close_the_gate(bus: MemoryEventBus) -> None:
    """With the archive on, the normalizer acks a raw batch only once its archive object is written (or, while the
    blob store is down, much later); by then the batch is normalized and on its way to the index, so its age is
    not the searchable delay. What the normalizer was not handed yet is."""
    clock, metrics = Clock(), Metrics()
    gate = BacklogGate(bus, TEN_SECONDS, metrics, clock=clock)
    normalizer = await bus.consumer("LOGS_RAW", "pipeline", filter_subject="logs.raw.>", ack_wait_seconds=300)
    for _ in range(3):
        await bus.publish("logs.raw.t1", b"raw")
    handed = await normalizer.fetch(10, 0.1)
    assert len(handed) == 3  # held unacked, as archive buffers hold them

    clock.now += timedelta(seconds=60)
    await gate.refresh()
    assert not gate.overloaded
    assert sample(metrics, "mintlog_ingest_backlog_messages", stream="LOGS_RAW") == 0
    assert (await bus.backlog("LOGS_RAW")).messages == 3  # still on the bus, as nothing accepted is dropped

    await bus.publish("logs.raw.t1", b"not handed yet")  # the normalizer stalls: this one does count
    clock.now += timedelta(seconds=11)
    await gate.refresh()
    assert gate.overloaded
    assert sample(metrics, "mintlog_ingest_backlog_messages", stream="LOGS_RAW") == 1


async def test_parsed_batches_waiting_for_a_retried_write_keep_the_gate_closed(bus: MemoryEventBus) -> None:
    """The index store is down: the indexer takes parsed batches and hands them back for a later retry. They are
    not indexed, so they count, however often they were delivered."""
    clock = Clock()
    gate = BacklogGate(bus, TEN_SECONDS, Metrics(), clock=clock)
    indexer = await bus.consumer("LOGS_PARSED", "indexer", filter_subject="logs.parsed.>", ack_wait_seconds=30)
    await bus.publish("logs.parsed.t1", b"parsed")
    for message in await indexer.fetch(10, 0.1):
        await message.nak(delay_seconds=60)
    clock.now += timedelta(seconds=11)
    await gate.refresh()
    assert gate.overloaded


async def test_the_gate_counts_the_messages_of_both_streams(bus: MemoryEventBus) -> None:
    gate = BacklogGate(bus, BacklogLimits(max_messages=3), Metrics())
    for _ in range(2):
        await bus.publish("logs.raw.t1", b"raw")
        await bus.publish("logs.parsed.t1", b"parsed")
    await gate.refresh()
    assert gate.overloaded
    last = gate.last_backlog
    assert last is not None
    assert last.messages == 4


async def test_an_unreadable_bus_keeps_the_last_decision(bus: MemoryEventBus) -> None:
    gate = BacklogGate(bus, BacklogLimits(max_messages=1), Metrics())
    for _ in range(2):
        await bus.publish("logs.raw.t1", b"raw")
    await gate.refresh()
    assert gate.overloaded
    await bus.close()
    await gate.refresh()
    assert gate.overloaded


async def test_with_both_limits_off_it_never_refuses_and_still_reports_the_backlog(bus: MemoryEventBus) -> None:
    metrics = Metrics()
    gate = BacklogGate(bus, OFF, metrics)
    for _ in range(5):
        await bus.publish("logs.raw.t1", b"raw")
    await gate.start()
    await gate.stop()
    assert not gate.overloaded
    gate.check()
    assert sample(metrics, "mintlog_ingest_backlog_messages", stream="LOGS_RAW") == 5
    assert sample(metrics, "mintlog_ingest_backlog_refusing") == 0


def service_with(bus: MemoryEventBus, gate: BacklogGate) -> IngestService:
    return IngestService(
        bus=bus,
        idempotency=FakeIdempotencyStore(),
        limits=IngestSettings(),
        limiter=MemoryRateLimiter(),
        rate_limits=RateLimitSettings(enabled=False),
        metrics=Metrics(),
        backlog=gate,
    )


async def test_a_refused_batch_publishes_nothing(bus: MemoryEventBus) -> None:
    gate = BacklogGate(bus, BacklogLimits(max_messages=1), Metrics())
    service = service_with(bus, gate)
    events: list[Any] = [{"message": "one"}]
    await service.accept("t1", events, source="http", idempotency=None)
    await service.accept("t1", events, source="http", idempotency=None)
    await gate.refresh()
    with pytest.raises(IngestBacklogged):
        await service.accept("t1", events, source="http", idempotency=None)
    with pytest.raises(IngestBacklogged):
        service.check_backlog()
    assert (await bus.backlog("LOGS_RAW")).messages == 2
