"""Heartbeat monitors without services: the ping routes' grammar and tokens, what a ping does to a heartbeat,
when a missed one is due again, the 422s of bad schedules, the ping intake of the ingest role (memory bus,
memory rate limiter, a fake store) and the uptime role's recorder (a fake store, the memory bus)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.domain.alerting import AlertEvent
from mintlog.domain.heartbeat_schedule import CronSchedule, PeriodSchedule, next_deadline_after_miss
from mintlog.domain.heartbeats import (
    HeartbeatPing,
    HeartbeatState,
    apply_ping,
    is_ping_token,
    late_error,
    new_ping_token,
    parse_ping_suffix,
    ping_path,
)
from mintlog.domain.maintenance_windows import MaintenanceWindowCreate, StoredWindow, WindowTargets, build_window
from mintlog.domain.monitors import Monitor, MonitorSpec, MonitorStatus, validate_monitor
from mintlog.domain.streams import decode_alert_event, decode_ping, decode_raw_batch
from mintlog.domain.uptime_checks import HeartbeatCheck
from mintlog.errors import NotFound, PayloadTooLarge, TooManyRequests, UnprocessableEntity
from mintlog.ports.maintenance import MaintenanceWindowStore
from mintlog.ports.uptime import CheckResult, MonitorStore, StateChangeRecord
from mintlog.roles.ingest.ping_routes import PingIntake
from mintlog.roles.uptime.heartbeats import HeartbeatRecorder, PingRetry
from mintlog.roles.uptime.maintenance import MaintenanceLookup
from mintlog.roles.uptime.outbox import AlertRelay

T0 = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)
HOURLY = PeriodSchedule(period_seconds=3600, grace_seconds=300)


def ping(kind: str = "success", at: datetime = T0, exit_status: int | None = None, body: str = "") -> HeartbeatPing:
    return HeartbeatPing(
        id=f"png_{kind}_{at.timestamp()}",
        tenant_id="acme",
        monitor_id="mon_1",
        kind=kind,  # pyright: ignore[reportArgumentType]
        received_at=at,
        exit_status=exit_status,
        body=body,
    )


class FakeWindows:
    """`MaintenanceWindowStore.tenant_windows` over a fixed list (the only method the lookup uses)."""

    def __init__(self, *windows: StoredWindow) -> None:
        self.windows = list(windows)

    async def tenant_windows(self, tenant_id: str) -> Sequence[StoredWindow]:
        return [window for window in self.windows if window.tenant_id == tenant_id]


def no_windows() -> MaintenanceLookup:
    return MaintenanceLookup(cast("MaintenanceWindowStore", FakeWindows()))


def window_over(monitor_id: str, starts_at: datetime, ends_at: datetime) -> MaintenanceLookup:
    body = MaintenanceWindowCreate(
        name="deploy", starts_at=starts_at, ends_at=ends_at, targets=WindowTargets(monitor_ids=[monitor_id])
    )
    window = build_window(body, window_id="mw_1", tenant_id="acme", created_at=T0, now=T0)
    return MaintenanceLookup(cast("MaintenanceWindowStore", FakeWindows(window)))


def heartbeat_monitor(*, paused: bool = False, down_after: int = 1, token: str | None = None) -> Monitor:
    spec = MonitorSpec(name="backup", check=HeartbeatCheck(schedule=HOURLY), down_after=down_after, paused=paused)
    return Monitor(
        id="mon_1",
        tenant_id="acme",
        spec=spec,
        created_at=T0,
        updated_at=T0,
        next_check_at=T0 + timedelta(seconds=3900),
        status=MonitorStatus(state="paused" if paused else "pending", since=T0),
        ping_token=token or new_ping_token(),
        heartbeat=HeartbeatState(),
    )


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (None, ("success", None)),
        ("start", ("start", None)),
        ("fail", ("fail", None)),
        ("0", ("success", 0)),
        ("1", ("fail", 1)),
        ("255", ("fail", 255)),
        ("256", None),
        ("-1", None),
        ("007", None),
        ("01", None),
        ("log", None),
        ("", None),
        ("START", None),
    ],
)
def test_the_last_path_segment_names_the_kind_of_ping(suffix: str | None, expected: object) -> None:
    assert parse_ping_suffix(suffix) == expected


def test_ping_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_ping_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert is_ping_token(token)
        assert len(token) * 6 >= 128  # URL-safe base64: 6 bits per character
        assert ping_path(token) == f"/ping/{token}"
    assert not is_ping_token("A" * 31)
    assert not is_ping_token("A" * 31 + "/")
    assert not is_ping_token("A" * 33)


def test_a_start_judges_nothing_and_the_success_after_it_measures_the_run() -> None:
    started = apply_ping(HeartbeatState(), ping("start", T0), HOURLY)
    assert (started.ok, started.next_deadline, started.state.last_start_at) == (None, None, T0)
    done = apply_ping(started.state, ping("success", T0 + timedelta(seconds=95)), HOURLY)
    assert done.ok is True
    assert done.error is None
    assert done.duration_seconds == 95
    assert done.state.last_start_at is None
    assert done.state.last_success_at == T0 + timedelta(seconds=95)
    assert done.next_deadline == T0 + timedelta(seconds=95 + 3600 + 300)
    # A success without a start has no duration.
    assert apply_ping(done.state, ping("success", T0 + timedelta(hours=1)), HOURLY).duration_seconds is None


def test_a_fail_or_a_non_zero_exit_status_fails_at_once_and_still_moves_the_deadline() -> None:
    failed = apply_ping(HeartbeatState(), ping("fail", T0), HOURLY)
    assert (failed.ok, failed.error) == (False, "the job reported a failure")
    assert failed.next_deadline == T0 + timedelta(seconds=3900)
    exited = apply_ping(HeartbeatState(), ping("fail", T0, exit_status=3), HOURLY)
    assert exited.error == "the job reported exit status 3"
    assert exited.state.last_exit_status == 3


def test_a_late_heartbeat_says_since_when_nothing_ended_a_run() -> None:
    assert late_error(None, T0) == f"late: no ping since {T0.isoformat()}"
    pinged = HeartbeatState(last_ping_at=T0, last_ping_kind="success")
    assert late_error(pinged, T0 - timedelta(days=1)) == f"late: no ping since {T0.isoformat()}"
    hung = HeartbeatState(last_ping_at=T0, last_ping_kind="start", last_start_at=T0)
    assert late_error(hung, T0) == f"late: started at {T0.isoformat()} and never finished"


def test_a_missed_deadline_is_followed_by_the_next_expected_run_without_backlog() -> None:
    missed = T0 + timedelta(seconds=3900)
    assert next_deadline_after_miss(HOURLY, missed, missed) == missed + timedelta(hours=1)
    # Claimed a little late: the next deadline does not drift with the claim.
    assert next_deadline_after_miss(HOURLY, missed, missed + timedelta(seconds=10)) == missed + timedelta(hours=1)
    # The role was away for a day: the next deadline counts from now, once.
    later = missed + timedelta(days=1)
    assert next_deadline_after_miss(HOURLY, missed, later) == later + timedelta(hours=1)
    daily = CronSchedule(expression="0 3 * * *", time_zone="UTC", grace_seconds=600)
    assert next_deadline_after_miss(daily, datetime(2026, 5, 5, 3, 10, tzinfo=UTC), T0) == datetime(
        2026, 5, 6, 3, 10, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"kind": "period", "period_seconds": 59, "grace_seconds": 0}, "check.schedule.period_seconds"),
        ({"kind": "period", "period_seconds": 60, "grace_seconds": 31 * 86400}, "check.schedule.grace_seconds"),
        ({"kind": "cron", "expression": "61 * * * *", "grace_seconds": 0}, "check.schedule.expression"),
        ({"kind": "cron", "expression": "0 3 * * *", "time_zone": "Europe/Nowhere", "grace_seconds": 0}, None),
    ],
)
def test_bad_schedules_are_422_naming_the_field(schedule: dict[str, Any], field: str | None) -> None:
    spec = msgspec.convert({"name": "x", "check": {"type": "heartbeat", "schedule": schedule}}, MonitorSpec)
    with pytest.raises(UnprocessableEntity) as caught:
        validate_monitor(spec, min_interval_seconds=60)
    assert caught.value.extra["field"] == (field or "check.schedule.time_zone")


def test_a_heartbeat_ignores_the_probe_timing_members() -> None:
    spec = MonitorSpec(name="x", check=HeartbeatCheck(schedule=HOURLY), interval_seconds=30, timeout_seconds=29)
    assert validate_monitor(spec, min_interval_seconds=120) == spec


class FakeMonitorStore:
    """The part of `MonitorStore` pings and deadlines use, over one monitor."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor: Monitor | None = monitor
        self.results: list[CheckResult] = []
        self.changes: list[StateChangeRecord] = []
        self.outbox: list[AlertEvent] = []
        self.status_after_next_read: MonitorStatus | None = None
        """A status another writer (a pause, a late outcome) stores right after the next read."""

    async def find_by_ping_token(self, ping_token: str) -> Monitor | None:
        return self.monitor if self.monitor is not None and self.monitor.ping_token == ping_token else None

    async def get_monitor(self, tenant_id: str, monitor_id: str) -> Monitor | None:
        found = self.monitor
        if found is None or (found.tenant_id, found.id) != (tenant_id, monitor_id):
            return None
        if self.status_after_next_read is not None:
            self.monitor = msgspec.structs.replace(found, status=self.status_after_next_read)
            self.status_after_next_read = None
        return found

    async def record_ping(
        self,
        monitor_id: str,
        *,
        heartbeat: HeartbeatState,
        expected_seq: int,
        next_check_at: datetime | None = None,
        status: MonitorStatus | None = None,
        result: CheckResult | None = None,
        change: StateChangeRecord | None = None,
        alert: AlertEvent | None = None,
    ) -> bool:
        monitor = self.monitor
        if monitor is None or monitor.spec.paused or monitor.status.transition_seq != expected_seq:
            return False
        self.monitor = msgspec.structs.replace(
            monitor,
            heartbeat=heartbeat,
            next_check_at=next_check_at or monitor.next_check_at,
            status=status or monitor.status,
        )
        self.results.extend([result] if result else [])
        self.changes.extend([change] if change else [])
        self.outbox.extend([alert] if alert else [])
        return True

    async def pending_alerts(self, *, monitor_id: str | None = None, limit: int = 100) -> list[AlertEvent]:
        return [event for event in self.outbox if monitor_id in (None, event.rule_id)][:limit]

    async def mark_alerts_published(self, event_ids: Sequence[str]) -> None:
        self.outbox = [event for event in self.outbox if event.id not in event_ids]

    async def record_check(
        self,
        monitor_id: str,
        result: CheckResult,
        status: MonitorStatus,
        *,
        expected_seq: int,
        change: StateChangeRecord | None,
        alert: AlertEvent | None = None,
    ) -> bool:
        return await self.record_ping(
            monitor_id,
            heartbeat=HeartbeatState(),
            expected_seq=expected_seq,
            status=status,
            result=result,
            change=change,
            alert=alert,
        )


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def messages(bus: MemoryEventBus, stream: str) -> Sequence[bytes]:
    return [message.data for message in bus.broker.stream(stream).messages.values()]


async def started_bus() -> MemoryEventBus:
    bus = MemoryEventBus()
    await bus.start()
    return bus


async def test_a_ping_is_published_on_its_tenant_s_subject_with_its_body() -> None:
    monitor = heartbeat_monitor()
    bus = await started_bus()
    intake = PingIntake(
        monitors=cast("MonitorStore", FakeMonitorStore(monitor)),
        bus=bus,
        limiter=MemoryRateLimiter(),
        requests_per_minute=60,
        clock=lambda: T0,
    )
    assert monitor.ping_token is not None
    accepted = await intake.accept(monitor.ping_token, "3", body=body(b"exit ", b"\xff3"), method="POST")
    [published] = messages(bus, "UPTIME_PINGS")
    assert decode_ping(published) == accepted
    assert (accepted.tenant_id, accepted.monitor_id, accepted.kind, accepted.exit_status) == (
        "acme",
        "mon_1",
        "fail",
        3,
    )
    assert accepted.body == "exit \ufffd3"
    assert accepted.received_at == T0


async def test_unknown_tokens_and_routes_are_404_and_publish_nothing() -> None:
    monitor = heartbeat_monitor()
    bus = await started_bus()
    intake = PingIntake(
        monitors=cast("MonitorStore", FakeMonitorStore(monitor)),
        bus=bus,
        limiter=MemoryRateLimiter(),
        requests_per_minute=60,
    )
    assert monitor.ping_token is not None
    for token, suffix in ((new_ping_token(), None), ("short", None), (monitor.ping_token, "stop")):
        with pytest.raises(NotFound) as caught:
            await intake.accept(token, suffix, body=body())
        assert caught.value.code == "ping_token_not_found"
    with pytest.raises(PayloadTooLarge):
        await intake.accept(monitor.ping_token, None, body=body(b"x" * (10 * 1024 + 1)))
    assert messages(bus, "UPTIME_PINGS") == []


async def test_pings_beyond_the_per_token_rate_are_429_with_a_retry_after() -> None:
    monitor = heartbeat_monitor()
    intake = PingIntake(
        monitors=cast("MonitorStore", FakeMonitorStore(monitor)),
        bus=await started_bus(),
        limiter=MemoryRateLimiter(),
        requests_per_minute=3,
    )
    assert monitor.ping_token is not None
    for _ in range(3):
        await intake.accept(monitor.ping_token, None, body=body())
    with pytest.raises(TooManyRequests) as caught:
        await intake.accept(monitor.ping_token, None, body=body())
    assert caught.value.code == "ping_rate_limited"
    assert caught.value.extra["retry_after_seconds"] == 60 // 3
    # Another token has its own bucket.
    other = heartbeat_monitor()
    intake_other = PingIntake(
        monitors=cast("MonitorStore", FakeMonitorStore(other)),
        bus=await started_bus(),
        limiter=MemoryRateLimiter(),
        requests_per_minute=3,
    )
    assert other.ping_token is not None
    await intake_other.accept(other.ping_token, None, body=body())


async def test_the_recorder_measures_runs_confirms_failures_and_opens_and_resolves_the_incident() -> None:
    store = FakeMonitorStore(heartbeat_monitor(down_after=1))
    bus = await started_bus()
    recorder = HeartbeatRecorder(
        monitors=cast("MonitorStore", store),
        bus=bus,
        relay=AlertRelay(monitors=cast("MonitorStore", store), bus=bus),
        maintenance=no_windows(),
        location="here",
        clock=lambda: T0,
    )
    await recorder.record(ping("start", T0))
    await recorder.record(ping("fail", T0 + timedelta(seconds=30), exit_status=2, body="boom"))
    assert store.monitor is not None
    assert store.monitor.status.state == "down"
    assert store.monitor.heartbeat is not None
    assert store.monitor.heartbeat.last_duration_seconds == 30
    assert store.monitor.next_check_at == T0 + timedelta(seconds=30 + 3900)
    await recorder.record(ping("success", T0 + timedelta(minutes=5)))
    assert store.monitor.status.state == "up"
    assert [result.ok for result in store.results] == [False, True]
    alerts = [decode_alert_event(data) for data in messages(bus, "ALERTS_EVENTS")]
    assert [alert.state for alert in alerts] == ["firing", "resolved"]
    assert "exit status 2" in alerts[0].message
    events = [event for data in messages(bus, "LOGS_RAW") for event in decode_raw_batch(data).events]
    pings = [event["fields"] for event in events if event["fields"]["event_kind"] == "ping"]
    assert [fields["ping_kind"] for fields in pings] == ["start", "fail", "success"]
    assert (pings[1]["body"], pings[1]["exit_status"], pings[1]["duration_seconds"]) == ("boom", 2, 30)


async def test_a_paused_heartbeat_records_nothing_and_a_moved_status_is_retried() -> None:
    store = FakeMonitorStore(heartbeat_monitor(paused=True))
    bus = await started_bus()
    recorder = HeartbeatRecorder(
        monitors=cast("MonitorStore", store),
        bus=bus,
        relay=AlertRelay(monitors=cast("MonitorStore", store), bus=bus),
        maintenance=no_windows(),
        location="here",
        clock=lambda: T0,
    )
    await recorder.record(ping("fail", T0))
    assert store.monitor is not None
    assert (store.monitor.status.state, store.results) == ("paused", [])
    [batch] = messages(bus, "LOGS_RAW")
    assert decode_raw_batch(batch).events[0]["fields"]["paused"] is True

    moved = FakeMonitorStore(heartbeat_monitor())
    moved.status_after_next_read = MonitorStatus(state="down", transition_seq=1)
    recorder = HeartbeatRecorder(
        monitors=cast("MonitorStore", moved),
        bus=bus,
        relay=AlertRelay(monitors=cast("MonitorStore", moved), bus=bus),
        maintenance=no_windows(),
        location="here",
        clock=lambda: T0,
    )
    with pytest.raises(PingRetry):
        await recorder.record(ping("success", T0))
    # Applied again on the fresh state, it is recorded.
    await recorder.record(ping("success", T0))
    assert moved.monitor is not None
    assert moved.monitor.status.state == "up"


async def test_a_missed_deadline_is_a_late_failure() -> None:
    store = FakeMonitorStore(heartbeat_monitor(down_after=1))
    bus = await started_bus()
    late_at = T0 + timedelta(seconds=3901)
    recorder = HeartbeatRecorder(
        monitors=cast("MonitorStore", store),
        bus=bus,
        relay=AlertRelay(monitors=cast("MonitorStore", store), bus=bus),
        maintenance=no_windows(),
        location="here",
        clock=lambda: late_at,
    )
    assert store.monitor is not None
    result = await recorder.late(store.monitor)
    assert not result.ok
    assert result.error == f"late: no ping since {T0.isoformat()}"
    assert store.monitor.status.state == "down"
    [alert] = [decode_alert_event(data) for data in messages(bus, "ALERTS_EVENTS")]
    assert alert.state == "firing"


async def test_a_heartbeat_late_or_failing_in_a_maintenance_window_confirms_nothing_and_is_marked() -> None:
    store = FakeMonitorStore(heartbeat_monitor(down_after=1))
    bus = await started_bus()
    window_end = T0 + timedelta(hours=3)
    late_at = T0 + timedelta(seconds=3901)
    now = [late_at]
    recorder = HeartbeatRecorder(
        monitors=cast("MonitorStore", store),
        bus=bus,
        relay=AlertRelay(monitors=cast("MonitorStore", store), bus=bus),
        maintenance=window_over("mon_1", T0, window_end),
        location="here",
        clock=lambda: now[0],
    )
    assert store.monitor is not None
    result = await recorder.late(store.monitor)
    assert (result.ok, result.in_maintenance) == (False, True)
    assert store.monitor.status.state == "maintenance"
    await recorder.record(ping("fail", T0 + timedelta(hours=2), exit_status=1))
    assert store.monitor.status.state == "maintenance"
    assert [result.in_maintenance for result in store.results] == [True, True]
    assert messages(bus, "ALERTS_EVENTS") == []
    # After the window, the same failure confirms `down` (down_after=1) and opens the incident.
    now[0] = window_end + timedelta(seconds=3901)
    result = await recorder.late(store.monitor)
    assert (result.ok, result.in_maintenance) == (False, False)
    assert store.monitor.status.state == "down"
    [alert] = [decode_alert_event(data) for data in messages(bus, "ALERTS_EVENTS")]
    assert alert.state == "firing"
