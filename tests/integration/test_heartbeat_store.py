"""Heartbeat monitors on a real database (SQLite and PostgreSQL, migrated through 0012): a ping token finds its
monitor (and nothing once rotated, or once its tenant is suspended), tokens are unique, a ping's write loses to a
concurrent status change, and two uptime instances claim a missed deadline exactly once while a ping that moved
the deadline makes the claim fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.adapters.db.uptime_sql import SqlMonitorStore
from mintlog.domain.heartbeat_schedule import PeriodSchedule
from mintlog.domain.heartbeats import HeartbeatState, new_ping_token
from mintlog.domain.monitors import Monitor, MonitorSpec, MonitorStatus
from mintlog.domain.tenants import Tenant
from mintlog.domain.uptime_checks import HeartbeatCheck
from mintlog.errors import Conflict
from mintlog.metrics import Metrics
from mintlog.ports.uptime import CheckResult
from mintlog.roles.kit.scheduler import DueWorkScheduler
from mintlog.roles.uptime.checker import MonitorChecker
from mintlog.roles.uptime.due import DueMonitors
from mintlog.roles.uptime.heartbeats import HeartbeatRecorder

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SCHEDULE = PeriodSchedule(period_seconds=60, grace_seconds=30)
SPEC = MonitorSpec(name="backup", check=HeartbeatCheck(schedule=SCHEDULE))


@pytest.fixture
async def databases(database_url: str) -> AsyncIterator[tuple[SqlMetadataStore, SqlMetadataStore]]:
    first, second = SqlMetadataStore(database_url), SqlMetadataStore(database_url)
    await first.start()
    await second.start()
    try:
        await first.create_tenant(Tenant(id="acme", name="Acme", created_at=T0))
        yield first, second
    finally:
        await first.close()
        await second.close()


def heartbeat(monitor_id: str, token: str) -> Monitor:
    return Monitor(
        id=monitor_id,
        tenant_id="acme",
        spec=SPEC,
        created_at=T0,
        updated_at=T0,
        next_check_at=T0 + timedelta(seconds=90),
        ping_token=token,
        heartbeat=HeartbeatState(),
    )


async def test_a_token_finds_its_monitor_until_rotated_and_tokens_are_unique(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    store = SqlMonitorStore(databases[0])
    token = new_ping_token()
    await store.create_monitor(heartbeat("mon_a", token), max_per_tenant=10)
    found = await store.find_by_ping_token(token)
    assert found is not None
    assert (found.id, found.heartbeat, found.spec.check) == ("mon_a", HeartbeatState(), SPEC.check)

    with pytest.raises(Conflict):
        await store.create_monitor(heartbeat("mon_b", token), max_per_tenant=10)
    other = await store.create_monitor(heartbeat("mon_c", new_ping_token()), max_per_tenant=10)
    with pytest.raises(Conflict):
        await store.replace_monitor("acme", other.id, SPEC, updated_at=T0, next_check_at=T0, ping_token=token)

    rotated = new_ping_token()
    await store.replace_monitor(
        "acme", "mon_a", SPEC, updated_at=T0, next_check_at=found.next_check_at, ping_token=rotated
    )
    assert await store.find_by_ping_token(token) is None
    assert (await store.find_by_ping_token(rotated)) is not None


async def test_a_ping_is_stored_with_its_status_unless_the_status_moved(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    store = SqlMonitorStore(databases[0])
    await store.create_monitor(heartbeat("mon_p", new_ping_token()), max_per_tenant=10)
    state = HeartbeatState(last_ping_at=T0, last_ping_kind="success", last_duration_seconds=12.5)
    status = MonitorStatus(state="up", since=T0, transition_seq=1, last_ok=True)
    result = CheckResult(id="r1", monitor_id="mon_p", tenant_id="acme", at=T0, location="l", ok=True, latency_ms=None)
    deadline = T0 + timedelta(seconds=90)
    assert await store.record_ping(
        "mon_p", heartbeat=state, expected_seq=0, next_check_at=deadline, status=status, result=result
    )
    stored = await store.get_monitor("acme", "mon_p")
    assert stored is not None
    assert (stored.heartbeat, stored.status.state, stored.next_check_at) == (state, "up", deadline)
    # The same ping again (a redelivery) finds its result taken: nothing is applied twice.
    with pytest.raises(Conflict):
        await store.record_ping("mon_p", heartbeat=state, expected_seq=1, status=status, result=result)
    # A writer that read the status before it moved stores nothing.
    assert not await store.record_ping("mon_p", heartbeat=HeartbeatState(), expected_seq=0)
    unchanged = await store.get_monitor("acme", "mon_p")
    assert unchanged is not None
    assert unchanged.heartbeat == state


class RecordingLate:
    def __init__(self) -> None:
        self.found_late: list[tuple[str, datetime]] = []

    async def late(self, monitor: Monitor) -> None:
        await asyncio.sleep(0.001)
        self.found_late.append((monitor.id, monitor.next_check_at))


async def test_a_missed_deadline_is_claimed_once_across_instances_and_a_ping_in_time_prevents_it(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    stores = [SqlMonitorStore(metadata) for metadata in databases]
    for n in range(5):
        await stores[0].create_monitor(heartbeat(f"mon_{n}", new_ping_token()), max_per_tenant=10)
    recorded = RecordingLate()
    now = [T0 + timedelta(seconds=100)]
    instances = [
        DueWorkScheduler(
            DueMonitors(store, cast("MonitorChecker", None), cast("HeartbeatRecorder", recorded), location="here"),
            work="uptime-checks",
            max_running=4,
            max_claimed=100,
            poll_seconds=60,
            metrics=Metrics(),
            clock=lambda: now[0],
        )
        for store in stores
    ]
    # mon_0 pinged in time: its deadline moved past now.
    assert await stores[1].record_ping(
        "mon_0", heartbeat=HeartbeatState(last_ping_at=T0), expected_seq=0, next_check_at=T0 + timedelta(seconds=150)
    )
    await asyncio.gather(*(instance.claim() for instance in instances for _ in range(3)))
    await asyncio.gather(*(instance.drain() for instance in instances))
    first_deadline = T0 + timedelta(seconds=90)
    assert sorted(recorded.found_late) == [(f"mon_{n}", first_deadline) for n in range(1, 5)]
    # Each missed deadline is followed by the next expected run's: one period later.
    again = await stores[0].get_monitor("acme", "mon_1")
    assert again is not None
    assert again.next_check_at == first_deadline + timedelta(seconds=60)
