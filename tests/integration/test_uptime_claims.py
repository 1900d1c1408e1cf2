"""Uptime checks on a real database (SQLite and PostgreSQL): two uptime instances, each with its own connection
pool, claim every monitor's check exactly once per interval; status writes lose to a concurrent pause; results
and state changes are stored and pruned; migration 0020 adds and drops the results' schedule columns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from msgspec.structs import replace
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from mintlog.adapters.db import migrations
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.adapters.db.uptime_sql import SqlMonitorStore
from mintlog.domain.monitor_quorum import apply_quorum
from mintlog.domain.monitors import Monitor, MonitorSpec, MonitorStatus
from mintlog.domain.tenants import Tenant
from mintlog.domain.uptime_checks import HttpCheck
from mintlog.metrics import Metrics
from mintlog.ports.uptime import CheckResult, LocatedDecision, StateChangeRecord
from mintlog.roles.kit.scheduler import DueWorkScheduler
from mintlog.roles.uptime.checker import MonitorChecker
from mintlog.roles.uptime.due import DueMonitors
from mintlog.roles.uptime.heartbeats import HeartbeatRecorder

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
INTERVAL_SECONDS = 30
SPEC = MonitorSpec(name="shop", check=HttpCheck(url="http://93.184.216.34/"), interval_seconds=INTERVAL_SECONDS)


@pytest.fixture
async def databases(database_url: str) -> AsyncIterator[tuple[SqlMetadataStore, SqlMetadataStore]]:
    """Two metadata stores (two connection pools, as in two processes) on one database with tenant `acme`."""
    first, second = SqlMetadataStore(database_url), SqlMetadataStore(database_url)
    await first.start()
    await second.start()
    try:
        await first.create_tenant(Tenant(id="acme", name="Acme", created_at=T0))
        yield first, second
    finally:
        await first.close()
        await second.close()


class RecordingChecker:
    """Records which monitor was checked for which due time."""

    def __init__(self, checked: list[tuple[str, datetime]]) -> None:
        self.checked = checked

    async def check(self, monitor: Monitor) -> None:
        await asyncio.sleep(0.001)
        self.checked.append((monitor.id, monitor.next_check_at))


async def test_migration_0020_adds_and_drops_the_schedule_of_results(database_url: str) -> None:
    async def result_columns() -> set[str]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: {column["name"] for column in inspect(sync).get_columns("uptime_results")}
                )
        finally:
            await engine.dispose()

    await migrations.upgrade(database_url)
    assert {"due_at", "started_at"} <= await result_columns()
    await migrations.downgrade(database_url, "0019")
    assert not {"due_at", "started_at"} & await result_columns()
    await migrations.upgrade(database_url)
    assert {"due_at", "started_at"} <= await result_columns()


async def test_two_instances_check_each_monitor_once_per_interval(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    stores = [SqlMonitorStore(metadata) for metadata in databases]
    monitors = [
        await stores[0].create_monitor(
            Monitor(id=f"mon_{n:02}", tenant_id="acme", spec=SPEC, created_at=T0, updated_at=T0, next_check_at=T0),
            max_per_tenant=100,
        )
        for n in range(20)
    ]
    now = [T0]
    checked: list[tuple[str, datetime]] = []
    instances = [
        DueWorkScheduler(
            DueMonitors(
                store,
                cast("MonitorChecker", RecordingChecker(checked)),
                cast("HeartbeatRecorder", RecordingChecker([])),
                location="here",
            ),
            work="uptime-checks",
            max_running=4,
            max_claimed=500,
            poll_seconds=60,
            metrics=Metrics(),
            clock=lambda: now[0],
        )
        for store in stores
    ]
    for _ in range(3):  # three intervals, each claimed by both instances three times at once
        await asyncio.gather(*(instance.claim() for instance in instances for _ in range(3)))
        await asyncio.gather(*(instance.drain() for instance in instances))
        now[0] += timedelta(seconds=INTERVAL_SECONDS)
    due_times = [T0 + timedelta(seconds=INTERVAL_SECONDS * n) for n in range(3)]
    assert sorted(checked) == sorted((monitor.id, due) for monitor in monitors for due in due_times)

    # A restart (a new scheduler on a new pool) finds the next due time where the claims left it.
    stored = await stores[1].get_monitor("acme", "mon_00")
    assert stored is not None
    assert stored.next_check_at == now[0]


async def test_a_paused_monitor_is_neither_due_nor_overwritten_by_a_check_in_flight(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    store = SqlMonitorStore(databases[0])
    monitor = await store.create_monitor(
        Monitor(id="mon_p", tenant_id="acme", spec=SPEC, created_at=T0, updated_at=T0, next_check_at=T0),
        max_per_tenant=100,
    )
    paused = MonitorStatus(state="paused", since=T0, transition_seq=1)
    await store.replace_monitor(
        "acme", monitor.id, replace(SPEC, paused=True), updated_at=T0, next_check_at=T0, status=paused
    )
    assert await store.due_monitors(T0 + timedelta(minutes=5), limit=10, location="here") == []
    result = CheckResult(id="r1", monitor_id=monitor.id, tenant_id="acme", at=T0, location="l", ok=False, latency_ms=1)
    down = MonitorStatus(state="down", since=T0, transition_seq=1)
    assert not await store.record_check(monitor.id, result, down, expected_seq=0, change=None)
    stored = await store.get_monitor("acme", monitor.id)
    assert stored is not None
    assert stored.status.state == "paused"
    assert [r.id for r in await store.list_results("acme", monitor.id, start=T0, end=T0 + timedelta(1))] == ["r1"]


async def test_results_and_state_changes_are_stored_listed_and_pruned(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    store = SqlMonitorStore(databases[0])
    monitor = await store.create_monitor(
        Monitor(id="mon_r", tenant_id="acme", spec=SPEC, created_at=T0, updated_at=T0, next_check_at=T0),
        max_per_tenant=100,
    )
    results: list[CheckResult] = []
    for n in range(3):
        at = T0 + timedelta(seconds=30 * n)
        status = MonitorStatus(state="down", since=T0, transition_seq=n + 1, last_check_at=at)
        change = StateChangeRecord(monitor_id=monitor.id, at=at, state="down" if n % 2 == 0 else "up")
        result = CheckResult(
            id=f"r{n}",
            monitor_id=monitor.id,
            tenant_id="acme",
            at=at,
            location="l",
            ok=n == 1,
            latency_ms=5,
            due_at=at - timedelta(seconds=2),
            started_at=at - timedelta(seconds=1),
        )
        results.append(result)
        assert await store.record_check(monitor.id, result, status, expected_seq=n, change=change)
    changes = await store.list_state_changes(
        "acme", monitor.id, start=T0 + timedelta(seconds=40), end=T0 + timedelta(hours=1)
    )
    # The last change before the window comes first: the state the window starts in.
    assert [(c.state, c.at) for c in changes] == [
        ("up", T0 + timedelta(seconds=30)),
        ("down", T0 + timedelta(seconds=60)),
    ]
    assert await store.list_results("beta", monitor.id, start=T0, end=T0 + timedelta(1)) == []
    assert await store.prune_results(T0 + timedelta(seconds=45)) == 2
    assert await store.list_results("acme", monitor.id, start=T0, end=T0 + timedelta(1)) == [results[2]]
    assert await store.delete_monitor("acme", monitor.id)
    assert await store.list_results("acme", monitor.id, start=T0, end=T0 + timedelta(1)) == []


def _scheduler(store: SqlMonitorStore, location: str, checked: list[tuple[str, datetime]], now: list[datetime]) -> Any:
    return DueWorkScheduler(
        DueMonitors(
            store,
            cast("MonitorChecker", RecordingChecker(checked)),
            cast("HeartbeatRecorder", RecordingChecker([])),
            location=location,
        ),
        work="uptime-checks",
        max_running=4,
        max_claimed=500,
        poll_seconds=60,
        metrics=Metrics(),
        clock=lambda: now[0],
    )


async def test_each_listed_location_checks_a_located_monitor_once_per_interval_and_no_other_does(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    stores = [SqlMonitorStore(metadata) for metadata in databases]
    located = replace(SPEC, locations=["eu", "us"], quorum=1)
    await stores[0].create_monitor(
        Monitor(id="mon_loc", tenant_id="acme", spec=located, created_at=T0, updated_at=T0, next_check_at=T0),
        max_per_tenant=100,
    )
    await stores[0].create_monitor(
        Monitor(id="mon_any", tenant_id="acme", spec=SPEC, created_at=T0, updated_at=T0, next_check_at=T0),
        max_per_tenant=100,
    )
    now = [T0]
    checked: dict[str, list[tuple[str, datetime]]] = {"eu": [], "us": [], "asia": []}
    # Two instances at eu (two pools), one at us, one at a location the monitor does not list.
    instances = [
        _scheduler(stores[0], "eu", checked["eu"], now),
        _scheduler(stores[1], "eu", checked["eu"], now),
        _scheduler(stores[1], "us", checked["us"], now),
        _scheduler(stores[0], "asia", checked["asia"], now),
    ]
    for _ in range(3):
        await asyncio.gather(*(instance.claim() for instance in instances for _ in range(2)))
        await asyncio.gather(*(instance.drain() for instance in instances))
        now[0] += timedelta(seconds=INTERVAL_SECONDS)
    due_times = [T0 + timedelta(seconds=INTERVAL_SECONDS * n) for n in range(3)]
    assert sorted(checked["eu"] + checked["us"] + checked["asia"]) == sorted(
        [("mon_loc", due) for due in due_times] * 2 + [("mon_any", due) for due in due_times]
    )
    assert sorted(item for item in checked["eu"] if item[0] == "mon_loc") == [("mon_loc", due) for due in due_times]
    assert sorted(item for item in checked["us"] if item[0] == "mon_loc") == [("mon_loc", due) for due in due_times]
    assert [item for item in checked["asia"] if item[0] == "mon_loc"] == []
    stored = await stores[1].get_monitor("acme", "mon_loc")
    assert stored is not None
    assert set(stored.location_states) == {"eu", "us"}


async def test_two_locations_reporting_at_once_both_count_towards_the_quorum(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    stores = [SqlMonitorStore(metadata) for metadata in databases]
    located = replace(SPEC, locations=["eu", "us"], quorum=2)
    await stores[0].create_monitor(
        Monitor(id="mon_q", tenant_id="acme", spec=located, created_at=T0, updated_at=T0, next_check_at=T0),
        max_per_tenant=100,
    )

    async def report(store: SqlMonitorStore, location: str) -> LocatedDecision | None:
        result = CheckResult(
            id=f"r_{location}", monitor_id="mon_q", tenant_id="acme", at=T0, location=location, ok=False, latency_ms=1
        )
        down = MonitorStatus(state="down", since=T0, last_check_at=T0, last_ok=False)

        def decide(overall: MonitorStatus, states: Mapping[str, MonitorStatus]) -> LocatedDecision:
            status, transition = apply_quorum(
                overall, states, reporting=location, locations=["eu", "us"], quorum=2, at=T0
            )
            change = None if transition is None else StateChangeRecord(monitor_id="mon_q", at=T0, state=status.state)
            return LocatedDecision(status=status, change=change, alert=None)

        return await store.record_location_check("mon_q", result, down, expected_seq=0, decide=decide)

    decisions = await asyncio.gather(report(stores[0], "eu"), report(stores[1], "us"))
    assert sorted(decision.status.state for decision in decisions if decision is not None) == ["down", "pending"]
    stored = await stores[0].get_monitor("acme", "mon_q")
    assert stored is not None
    assert (stored.status.state, stored.status.transition_seq) == ("down", 1)
    assert {location: status.state for location, status in stored.location_states.items()} == {
        "eu": "down",
        "us": "down",
    }
    # An edit starts every location's confirmation again.
    edited = await stores[0].replace_monitor(
        "acme", "mon_q", replace(located, name="shop v2"), updated_at=T0, next_check_at=T0
    )
    assert edited is not None
    assert {status.state for status in edited.location_states.values()} == {"pending"}
