"""Old and future event times: what ingest refuses for a tenant whose retention counts from event time (the
`202` answer names each event), and how the pipeline keeps a producer's future clock off the top of searches."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.auth import Authenticator
from mintlog.domain.events import RawBatch
from mintlog.domain.keys import generate_api_key
from mintlog.domain.normalize import normalize_event
from mintlog.domain.retention import TimeWindow
from mintlog.domain.streams import decode_raw_batch
from mintlog.domain.tenants import ApiKey, IngestTimePolicy, Tenant
from mintlog.domain.validation import reason_code, validate_events
from mintlog.errors import BusUnavailable, UnprocessableEntity
from mintlog.metrics import Metrics
from mintlog.parsing.timestamps import parse_timestamp
from mintlog.ports.bus import PublishAck
from mintlog.roles.ingest.service import IdempotentRequest, IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore

RECEIVED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
THIRTY_DAYS = IngestTimePolicy(retention_days=30)
# 30 days before 2026-11-26T12:00Z is 2026-10-27T12:00Z: that whole UTC day is still kept.
OLDEST = datetime(2026, 10, 27, tzinfo=UTC)
LIMITS = IngestSettings()


def window(policy: IngestTimePolicy = THIRTY_DAYS, received_at: datetime = RECEIVED) -> TimeWindow:
    built = TimeWindow.of(policy, received_at)
    assert built is not None
    return built


def refused(events: list[Any], policy: IngestTimePolicy | None = THIRTY_DAYS) -> dict[int, str]:
    outcome = validate_events(events, LIMITS, TimeWindow.of(policy, RECEIVED))
    return {rejection.index: reason_code(rejection.reason) for rejection in outcome.rejections}


# --- which events are too old ---------------------------------------------------------------------------------


def test_an_event_older_than_the_retention_by_event_time_is_refused_and_the_rest_is_kept() -> None:
    events: list[Any] = [
        {"message": "kept", "timestamp": "2026-11-26T11:00:00Z"},
        {"message": "first instant kept", "timestamp": "2026-10-27T00:00:00Z"},
        {"message": "just before", "timestamp": "2026-10-26T23:59:59.999999Z"},
        {"message": "an audit from 2019", "timestamp": "2019-03-09T10:00:00+01:00"},
        {"message": "no time: the arrival time"},
        {"message": "unreadable: the arrival time", "timestamp": "yesterday-ish"},
        {"message": "epoch seconds", "timestamp": int((OLDEST - timedelta(seconds=1)).timestamp())},
        {"message": "epoch milliseconds", "timestamp": int(OLDEST.timestamp() * 1000)},
        {"message": "an alias", "timestamp": "", "ts": "2001-01-01T00:00:00Z"},
        {"message": "not an event", "timestamp": "2019-01-01T00:00:00Z", "fields": 3},
    ]

    assert refused(events) == {2: "too_old", 3: "too_old", 6: "too_old", 8: "too_old", 9: "wrong_type"}


def test_the_reason_says_what_is_kept_and_how_to_import_older_events() -> None:
    reason = window().refusal({"message": "m", "timestamp": "2019-03-09T10:00:00Z"})

    assert reason is not None
    assert "30 days" in reason
    assert "2026-10-27T00:00:00Z" in reason
    assert "retention_basis to received_at" in reason


def test_a_zone_less_time_is_judged_in_the_tenants_zone_like_the_pipeline_reads_it() -> None:
    # 2026-10-26 20:30 in New York is 2026-10-27 00:30 UTC: kept; in UTC it would be too old.
    new_york = IngestTimePolicy(retention_days=30, time_zone="America/New_York")
    event = {"message": "m", "timestamp": "2026-10-26 20:30:00"}

    assert window(new_york).refusal(event) is None
    assert window(THIRTY_DAYS).refusal(event) is not None


def test_nothing_is_too_old_when_retention_counts_from_arrival_or_the_policy_is_unknown() -> None:
    ancient: list[Any] = [{"message": "m", "timestamp": "1999-01-01T00:00:00Z"}]

    assert refused(ancient, IngestTimePolicy(retention_days=30, retention_basis="received_at")) == {}
    assert refused(ancient, None) == {}


def test_the_quick_date_check_decides_exactly_like_parsing_the_time() -> None:
    rng = random.Random(3)
    check = window(IngestTimePolicy(retention_days=30, time_zone="Pacific/Kiritimati"))
    for _ in range(5_000):
        moment = OLDEST + timedelta(minutes=rng.randint(-6 * 24 * 60, 6 * 24 * 60))
        offset = timedelta(minutes=rng.choice([-720, -330, 0, 345, 840]))
        local = moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) + offset
        text = rng.choice(
            [
                local.isoformat() + ("+" if offset >= timedelta(0) else "-") + _hours(offset),
                moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                local.strftime("%Y-%m-%d %H:%M:%S"),
            ]
        )
        parsed = parse_timestamp(text, check.context)
        assert parsed is not None
        assert (check.refusal({"message": "m", "timestamp": text}) is not None) == (parsed < OLDEST), text


def _hours(offset: timedelta) -> str:
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- the 202 answer ---------------------------------------------------------------------------------------------


class RefusingBus(MemoryEventBus):
    """Refuses every publish (no PubAck, nothing stored) while `down`."""

    down = False

    async def publish(
        self, subject: str, payload: bytes, *, msg_id: str | None = None, headers: dict[str, str] | None = None
    ) -> PublishAck:
        if self.down:
            raise BusUnavailable("no PubAck: the bus is down")
        return await super().publish(subject, payload, msg_id=msg_id, headers=headers)


async def started(clock: list[datetime]) -> tuple[IngestService, RefusingBus, Metrics]:
    bus = RefusingBus()
    await bus.start()
    metrics = Metrics()
    service = IngestService(
        bus=bus,
        idempotency=FakeIdempotencyStore(),
        limits=LIMITS,
        limiter=MemoryRateLimiter(),
        rate_limits=RateLimitSettings(enabled=False),
        metrics=metrics,
        clock=lambda: clock[0],
    )
    return service, bus, metrics


def raw_batches(bus: MemoryEventBus) -> list[RawBatch]:
    return [decode_raw_batch(message.data) for message in bus.broker.stream("LOGS_RAW").messages.values()]


def body(*timestamps: str) -> bytes:
    return json.dumps({"events": [{"message": f"e{n}", "timestamp": t} for n, t in enumerate(timestamps)]}).encode()


async def test_the_202_names_each_too_old_event_and_the_refusals_are_counted() -> None:
    service, bus, metrics = await started([RECEIVED])

    answer, _ = await service.ingest(
        "acme", body("2026-11-26T11:00:00Z", "2019-03-09T10:00:00Z", "2026-11-20T08:00:00Z"), time_policy=THIRTY_DAYS
    )

    result = json.loads(answer)
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert result["errors"][0]["index"] == 1
    assert "older than this tenant's retention of 30 days" in result["errors"][0]["reason"]
    [batch] = raw_batches(bus)
    assert [event["message"] for event in batch.events] == ["e0", "e2"]
    rejected = metrics.registry.get_sample_value("mintlog_ingest_events_rejected_total", {"reason": "too_old"})
    assert rejected == 1


async def test_a_batch_of_only_too_old_events_is_refused_whole() -> None:
    service, bus, _ = await started([RECEIVED])

    with pytest.raises(UnprocessableEntity) as refusal:
        await service.ingest("acme", body("2019-03-09T10:00:00Z"), time_policy=THIRTY_DAYS)

    assert refusal.value.code == "all_events_rejected"
    assert raw_batches(bus) == []


async def test_a_retried_batch_is_judged_at_its_first_arrival_so_its_events_keep_their_ids() -> None:
    clock = [RECEIVED]
    service, bus, _ = await started(clock)
    bus.down = True  # the first attempt is not acknowledged
    payload = body("2026-10-27T06:00:00Z", "2026-11-26T11:00:00Z")
    idempotency = IdempotentRequest.of("retry-1", payload)
    events = msgspec.json.decode(payload)["events"]

    with pytest.raises(BusUnavailable):
        await service.accept("acme", events, source="http", idempotency=idempotency, time_policy=THIRTY_DAYS)
    bus.down = False
    clock[0] = RECEIVED + timedelta(hours=13)  # 2026-10-27 is past retention now, but not at the first arrival
    answer, _ = await service.accept("acme", events, source="http", idempotency=idempotency, time_policy=THIRTY_DAYS)

    assert json.loads(answer)["accepted"] == 2
    [batch] = raw_batches(bus)
    assert batch.received_at == RECEIVED
    assert len(batch.events) == 2


async def test_the_principal_carries_the_tenants_time_policy_to_ingest() -> None:
    generated = generate_api_key()
    tenant = Tenant(
        id="acme",
        name="Acme",
        retention_days=400,
        retention_basis="received_at",
        time_zone="Europe/Berlin",
        created_at=RECEIVED,
    )
    key = ApiKey(
        id="key_1",
        tenant_id="acme",
        name="k",
        key_hash=generated.key_hash,
        prefix=generated.prefix,
        scopes=("ingest:logs",),
        created_at=RECEIVED,
    )

    class Metadata:
        async def find_api_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
            return (key, tenant) if key_hash == generated.key_hash else None

    auth = Authenticator(Metadata(), MemoryCache(), ttl_seconds=60, clock=lambda: RECEIVED)  # type: ignore[arg-type]

    principal = await auth.authenticate(generated.secret)
    cached = await auth.authenticate(generated.secret)

    expected = IngestTimePolicy(retention_days=400, retention_basis="received_at", time_zone="Europe/Berlin")
    assert principal.time_policy == expected
    assert cached.time_policy == expected


# --- future times -----------------------------------------------------------------------------------------------


def normalized(raw: dict[str, Any], limits: IngestSettings = LIMITS) -> Any:
    return normalize_event(
        raw,
        tenant_id="acme",
        event_id="b1-00000",
        received_at=RECEIVED,
        source="http",
        default_service="svc",
        default_host="host",
        limits=limits,
    )


def test_a_time_further_in_the_future_than_the_bound_takes_the_arrival_time_and_keeps_the_original() -> None:
    ahead = normalized({"message": "m", "timestamp": "2027-01-01T00:00:00Z"})
    in_text = normalized({"message": "2027-01-01 00:00:00,000 ERROR wrong clock"})
    lifted = normalized({"message": '{"msg": "m", "time": 1798761600}'})

    assert (ahead.timestamp, ahead.fields["timestamp_original"]) == (RECEIVED, "2027-01-01T00:00:00Z")
    assert (in_text.timestamp, in_text.fields["timestamp_original"]) == (RECEIVED, "2027-01-01T00:00:00+00:00")
    assert (in_text.level, in_text.fields["detected.time_format"]) == ("error", "iso8601")
    assert (lifted.timestamp, lifted.fields["timestamp_original"]) == (RECEIVED, 1798761600)


def test_a_little_clock_skew_is_kept_as_sent() -> None:
    skewed = RECEIVED + timedelta(seconds=LIMITS.max_future_seconds)

    event = normalized({"message": "m", "timestamp": skewed.isoformat()})
    strict = normalized({"message": "m", "timestamp": skewed.isoformat()}, IngestSettings(max_future_seconds=0))

    assert (event.timestamp, event.fields) == (skewed, {})
    assert (strict.timestamp, strict.fields["timestamp_original"]) == (RECEIVED, skewed.isoformat())
