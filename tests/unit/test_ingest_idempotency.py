"""`IngestService` with an `Idempotency-Key`: stored exactly once within the window, whatever fails.

The bus is `MemoryEventBus` (a "restart" of the bus that forgot its duplicate window is a fresh broker) and
the idempotency records live in `FakeIdempotencyStore`, which outlives a "restart" of the service as the
metadata database does.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.domain.events import RawBatch, event_id
from mintlog.domain.streams import decode_raw_batch
from mintlog.errors import BusUnavailable, DatabaseUnavailable, UnprocessableEntity
from mintlog.metrics import Metrics
from mintlog.ports.bus import PublishAck
from mintlog.roles.ingest.service import IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore

TENANT = "acme"
WINDOW = timedelta(hours=24)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class FlakyBus(MemoryEventBus):
    """A `MemoryEventBus` whose publishes can fail: `lose_ack` stores the message and then raises (the PubAck
    was lost, as after a timeout), `refuse` raises without storing; each counts down one publish per failure."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.lose_ack = 0
        self.refuse_after = -1  # publishes to let through before refusing, -1: never refuse
        self.msg_ids: list[str | None] = []

    async def publish(
        self, subject: str, payload: bytes, *, msg_id: str | None = None, headers: dict[str, str] | None = None
    ) -> PublishAck:
        self.msg_ids.append(msg_id)
        if self.refuse_after == 0:
            raise BusUnavailable("no PubAck: the bus is down")
        self.refuse_after -= 1
        ack = await super().publish(subject, payload, msg_id=msg_id, headers=headers)
        if self.lose_ack > 0:
            self.lose_ack -= 1
            raise BusUnavailable("no PubAck within 5s")
        return ack


async def started_bus(**options: Any) -> FlakyBus:
    bus = FlakyBus(**options)
    await bus.start()
    return bus


def service_on(
    bus: MemoryEventBus,
    store: FakeIdempotencyStore,
    clock: Clock,
    *,
    limiter: MemoryRateLimiter | None = None,
    rate_limits: RateLimitSettings | None = None,
) -> IngestService:
    return IngestService(
        bus=bus,
        idempotency=store,
        limits=IngestSettings(idempotency_ttl_seconds=int(WINDOW.total_seconds())),
        limiter=limiter or MemoryRateLimiter(),
        rate_limits=rate_limits or RateLimitSettings(enabled=False),
        metrics=Metrics(),
        clock=clock,
    )


async def raw_batches(bus: MemoryEventBus) -> list[RawBatch]:
    """Every message stored in `LOGS_RAW`, in order."""
    return [decode_raw_batch(message.data) for message in bus.broker.stream("LOGS_RAW").messages.values()]


def stored_event_ids(batches: list[RawBatch]) -> list[str]:
    """The ids the pipeline gives the events of `batches` (what the create-only log stores key on)."""
    return [event_id(b.batch_id, b.first_index + i) for b in batches for i in range(len(b.events))]


def body(*messages: str) -> bytes:
    return json.dumps({"events": [{"message": message} for message in messages]}).encode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> FakeIdempotencyStore:
    return FakeIdempotencyStore()


async def test_same_key_and_body_answers_the_first_answer_replayed_and_publishes_once(
    clock: Clock, store: FakeIdempotencyStore
) -> None:
    bus = await started_bus()
    service = service_on(bus, store, clock)
    first, first_replayed = await service.ingest(TENANT, body("a", "b"), idempotency_key="k-1")
    again, again_replayed = await service.ingest(TENANT, body("a", "b"), idempotency_key="k-1")
    assert (first_replayed, again_replayed) == (False, True)
    assert again == first
    assert json.loads(first)["accepted"] == 2
    assert len(await raw_batches(bus)) == 1


async def test_the_key_outlives_a_restart_of_the_process_and_of_the_bus(
    clock: Clock, store: FakeIdempotencyStore
) -> None:
    before = await started_bus()
    first, _ = await service_on(before, store, clock).ingest(TENANT, body("once"), idempotency_key="k-1")

    after = await started_bus()  # a new process on a bus that lost its duplicate window
    restarted = service_on(after, store, clock)
    clock.now += timedelta(hours=23)
    assert await restarted.ingest(TENANT, body("once"), idempotency_key="k-1") == (first, True)
    with pytest.raises(UnprocessableEntity) as refused:
        await restarted.ingest(TENANT, body("something else"), idempotency_key="k-1")
    assert refused.value.code == "idempotency_key_reused"
    assert await raw_batches(after) == []


async def test_different_body_with_a_used_key_is_refused_and_publishes_nothing(
    clock: Clock, store: FakeIdempotencyStore
) -> None:
    bus = await started_bus()
    service = service_on(bus, store, clock)
    await service.ingest(TENANT, body("first"), idempotency_key="k-1")
    with pytest.raises(UnprocessableEntity) as refused:
        await service.ingest(TENANT, body("second"), idempotency_key="k-1")
    assert refused.value.code == "idempotency_key_reused"
    assert [b.events for b in await raw_batches(bus)] == [[{"message": "first"}]]


async def test_a_lost_puback_then_a_retry_stores_the_batch_once(clock: Clock, store: FakeIdempotencyStore) -> None:
    bus = await started_bus()
    bus.lose_ack = 1
    service = service_on(bus, store, clock)
    with pytest.raises(BusUnavailable):  # answered 503, yet the batch is on the bus
        await service.ingest(TENANT, body("a", "b"), idempotency_key="k-1")
    answer, replayed = await service.ingest(TENANT, body("a", "b"), idempotency_key="k-1")
    assert not replayed
    batches = await raw_batches(bus)
    assert len(batches) == 1
    assert json.loads(answer)["batch_id"] == batches[0].batch_id
    assert await service.ingest(TENANT, body("a", "b"), idempotency_key="k-1") == (answer, True)
    assert len(bus.msg_ids) == 2  # the replay of the completed key published nothing


async def test_a_retry_after_the_bus_forgot_the_msg_id_republishes_the_same_event_ids(
    clock: Clock, store: FakeIdempotencyStore
) -> None:
    # The first batch was stored although answered 503; then the bus restarted and its duplicate window no
    # longer knows the msg id (a consumed message leaves a work-queue stream). The retry - one second later,
    # on the next UTC day - must carry the same batch id and receive time, hence the same event ids and the
    # same event day: the log stores write an id at most once per day partition.
    before = await started_bus()
    before.lose_ack = 1
    with pytest.raises(BusUnavailable):
        await service_on(before, store, clock).ingest(TENANT, body("no timestamp"), idempotency_key="k-1")
    clock.now += timedelta(seconds=1)
    after = await started_bus()
    answer, _ = await service_on(after, store, clock).ingest(TENANT, body("no timestamp"), idempotency_key="k-1")
    (first,), (retried,) = await raw_batches(before), await raw_batches(after)
    assert stored_event_ids([retried]) == stored_event_ids([first])
    assert retried.received_at == first.received_at
    assert retried.events == first.events
    assert json.loads(answer)["batch_id"] == first.batch_id
    assert after.msg_ids == before.msg_ids


async def test_a_split_batch_is_deduplicated_part_by_part(clock: Clock, store: FakeIdempotencyStore) -> None:
    bus = await started_bus(max_payload_bytes=16 * 1024)  # 12 KiB per message after the headroom
    events = [f"{n:03d} " + "x" * 1000 for n in range(40)]
    bus.refuse_after = 2  # two parts are stored, then the bus goes away
    service = service_on(bus, store, clock)
    with pytest.raises(BusUnavailable):
        await service.ingest(TENANT, body(*events), idempotency_key="big")
    assert len(await raw_batches(bus)) == 2
    bus.refuse_after = -1
    answer, _ = await service.ingest(TENANT, body(*events), idempotency_key="big")
    batches = await raw_batches(bus)
    assert len(batches) > 3
    assert len(set(bus.msg_ids)) == len(batches)  # one msg id per part, the same on the retry
    ids = stored_event_ids(batches)
    assert sorted(ids) == [event_id(json.loads(answer)["batch_id"], n) for n in range(40)]
    assert [e["message"] for b in batches for e in b.events] == events


async def test_the_window_is_counted_from_the_first_request(clock: Clock, store: FakeIdempotencyStore) -> None:
    bus = await started_bus()
    service = service_on(bus, store, clock)
    first, _ = await service.ingest(TENANT, body("daily"), idempotency_key="k-1")
    clock.now += WINDOW - timedelta(seconds=1)
    assert await service.ingest(TENANT, body("daily"), idempotency_key="k-1") == (first, True)
    clock.now += timedelta(seconds=1)
    later, replayed = await service.ingest(TENANT, body("daily"), idempotency_key="k-1")
    assert not replayed
    assert json.loads(later)["batch_id"] != json.loads(first)["batch_id"]
    assert len(await raw_batches(bus)) == 2


async def test_keys_are_per_tenant(clock: Clock, store: FakeIdempotencyStore) -> None:
    bus = await started_bus()
    service = service_on(bus, store, clock)
    await service.ingest("acme", body("same"), idempotency_key="k-1")
    answer, replayed = await service.ingest("globex", body("same"), idempotency_key="k-1")
    assert not replayed
    assert [b.tenant_id for b in await raw_batches(bus)] == ["acme", "globex"]
    assert json.loads(answer)["accepted"] == 1


async def test_an_unreachable_database_answers_503_and_publishes_nothing(
    clock: Clock, store: FakeIdempotencyStore
) -> None:
    bus = await started_bus()
    store.unavailable = True
    with pytest.raises(DatabaseUnavailable):
        await service_on(bus, store, clock).ingest(TENANT, body("a"), idempotency_key="k-1")
    assert bus.msg_ids == []


async def test_a_record_left_pending_is_completed_by_the_retry(clock: Clock, store: FakeIdempotencyStore) -> None:
    bus = await started_bus()
    store.fail_complete = True
    service = service_on(bus, store, clock)
    first, _ = await service.ingest(TENANT, body("a"), idempotency_key="k-1")  # durable: still 202
    store.fail_complete = False
    assert await service.ingest(TENANT, body("a"), idempotency_key="k-1") == (first, False)
    assert await service.ingest(TENANT, body("a"), idempotency_key="k-1") == (first, True)
    assert len(await raw_batches(bus)) == 1


async def test_concurrent_requests_with_one_key_store_once(clock: Clock, store: FakeIdempotencyStore) -> None:
    bus = await started_bus()
    service = service_on(bus, store, clock)
    answers = await asyncio.gather(*(service.ingest(TENANT, body("a"), idempotency_key="k-1") for _ in range(5)))
    assert len({answer for answer, _ in answers}) == 1
    assert len(await raw_batches(bus)) == 1


async def test_replays_of_a_completed_key_cost_no_quota(clock: Clock, store: FakeIdempotencyStore) -> None:
    bus = await started_bus()
    quota = RateLimitSettings(tenant_ingest_events_per_second=1, burst_seconds=2)  # 2 events, then 429
    service = service_on(bus, store, clock, limiter=MemoryRateLimiter(clock=lambda: 0.0), rate_limits=quota)
    first, _ = await service.ingest(TENANT, body("a", "b"), idempotency_key="k-1")
    for _ in range(3):
        assert await service.ingest(TENANT, body("a", "b"), idempotency_key="k-1") == (first, True)


async def test_a_key_reused_after_its_window_is_stored_even_inside_the_bus_duplicate_window(
    clock: Clock, store: FakeIdempotencyStore
) -> None:
    bus = await started_bus(duplicate_window_seconds=7 * 86400)  # the bus remembers msg ids longer
    service = service_on(bus, store, clock)
    await service.ingest(TENANT, body("again"), idempotency_key="k-1")
    clock.now += WINDOW
    answer, replayed = await service.ingest(TENANT, body("again"), idempotency_key="k-1")
    assert not replayed
    batches = await raw_batches(bus)
    assert len(batches) == 2
    assert json.loads(answer)["batch_id"] == batches[1].batch_id


async def test_expired_records_are_swept(clock: Clock, store: FakeIdempotencyStore) -> None:
    bus = await started_bus()
    service = service_on(bus, store, clock)
    await service.ingest(TENANT, body("old"), idempotency_key="old")
    clock.now += timedelta(hours=12)
    await service.ingest(TENANT, body("new"), idempotency_key="new")
    clock.now += timedelta(hours=12)
    assert await service.forget_expired_keys() == 1
    assert len(store.records) == 1
    await service.close()


async def test_a_request_with_a_key_sweeps_expired_records_in_the_background(
    clock: Clock, store: FakeIdempotencyStore
) -> None:
    bus = await started_bus()
    await service_on(bus, store, clock).ingest(TENANT, body("old"), idempotency_key="old")
    clock.now += WINDOW
    restarted = service_on(bus, store, clock)
    await restarted.ingest(TENANT, body("new"), idempotency_key="new")
    for _ in range(100):
        if len(store.records) == 1:
            break
        await asyncio.sleep(0.01)
    (kept,) = store.records.values()
    assert kept.batch_id == (await raw_batches(bus))[1].batch_id
    await restarted.close()
