"""The uptime alert outbox on a real database (SQLite and PostgreSQL): an alert event is durable exactly when its
status is (one transaction), a check that lost to a pause leaves none, and the relay publishes the outbox in
order per monitor once the bus is back, each event once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.adapters.db.uptime_sql import SqlMonitorStore
from mintlog.domain.monitors import Monitor, MonitorSpec, MonitorStatus
from mintlog.domain.streams import ALERTS_EVENTS, decode_alert_event
from mintlog.domain.tenants import Tenant
from mintlog.domain.uptime_alerts import monitor_alert
from mintlog.domain.uptime_checks import HttpCheck
from mintlog.errors import BusUnavailable
from mintlog.ports.uptime import CheckResult, StateChangeRecord
from mintlog.roles.uptime.outbox import AlertRelay

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SPEC = MonitorSpec(name="shop", check=HttpCheck(url="http://93.184.216.34/"), interval_seconds=30)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlMonitorStore]:
    metadata = SqlMetadataStore(database_url)
    await metadata.start()
    try:
        await metadata.create_tenant(Tenant(id="acme", name="Acme", created_at=T0))
        yield SqlMonitorStore(metadata)
    finally:
        await metadata.close()


class FlakyBus(MemoryEventBus):
    """A memory bus whose publishes fail while `down`."""

    down = False

    async def publish(self, subject: str, payload: bytes, *, msg_id: str | None = None, **kwargs: Any) -> Any:
        if self.down:
            raise BusUnavailable("test outage")
        return await super().publish(subject, payload, msg_id=msg_id, **kwargs)


async def _monitor(store: SqlMonitorStore, monitor_id: str) -> Monitor:
    return await store.create_monitor(
        Monitor(id=monitor_id, tenant_id="acme", spec=SPEC, created_at=T0, updated_at=T0, next_check_at=T0),
        max_per_tenant=100,
    )


async def _transition(
    store: SqlMonitorStore, monitor: Monitor, seq: int, *, ok: bool, expected_seq: int | None = None
) -> bool:
    at = T0 + timedelta(seconds=30 * seq)
    state = "up" if ok else "down"
    status = MonitorStatus(state=state, since=at, transition_seq=seq)
    result = CheckResult(
        id=f"{monitor.id}-{seq}", monitor_id=monitor.id, tenant_id="acme", at=at, location="l", ok=ok, latency_ms=1
    )
    alert = monitor_alert(monitor, seq=seq, state="resolved" if ok else "firing", at=at, window_start=at, message=state)
    change = StateChangeRecord(monitor_id=monitor.id, at=at, state=state)
    return await store.record_check(
        monitor.id,
        result,
        status,
        expected_seq=seq - 1 if expected_seq is None else expected_seq,
        change=change,
        alert=alert,
    )


async def _published(bus: MemoryEventBus) -> list[tuple[str, str]]:
    consumer = await bus.consumer(ALERTS_EVENTS.name, "test", filter_subject="alerts.events.>", ack_wait_seconds=60)
    found: list[tuple[str, str]] = []
    try:
        while batch := await consumer.fetch(100, 0.2):
            for message in batch:
                event = decode_alert_event(message.data)
                found.append((event.rule_id, event.state))
                await message.ack()
    finally:
        await consumer.close()
    return found


async def test_the_outbox_holds_what_the_status_holds_and_is_relayed_in_order_after_an_outage(
    store: SqlMonitorStore,
) -> None:
    first, second = await _monitor(store, "mon_a"), await _monitor(store, "mon_b")
    assert await _transition(store, first, 1, ok=False)
    assert await _transition(store, second, 1, ok=False)
    assert await _transition(store, first, 2, ok=True)
    # A check that lost to a concurrent change (expected seq 0 no longer stored) leaves no event behind.
    assert not await _transition(store, second, 2, ok=True, expected_seq=0)
    assert [(e.rule_id, e.state) for e in await store.pending_alerts(monitor_id="mon_a")] == [
        ("mon_a", "firing"),
        ("mon_a", "resolved"),
    ]

    bus = FlakyBus()
    await bus.start()
    try:
        relay = AlertRelay(monitors=store, bus=bus)
        bus.down = True
        assert await relay.sweep() == 0
        assert await relay.publish_monitor("mon_a") == 0
        assert len(await store.pending_alerts()) == 3
        bus.down = False
        assert await relay.sweep() == 3
        assert await relay.sweep() == 0
        published = await _published(bus)
    finally:
        await bus.close()
    assert published.index(("mon_a", "firing")) < published.index(("mon_a", "resolved"))
    assert sorted(published) == [("mon_a", "firing"), ("mon_a", "resolved"), ("mon_b", "firing")]
    await store.mark_alerts_published(["uptime:mon_a:1"])  # idempotent


async def test_a_deleted_monitors_resolution_outlives_it(store: SqlMonitorStore) -> None:
    monitor = await _monitor(store, "mon_d")
    assert await _transition(store, monitor, 1, ok=False)
    down = await store.get_monitor("acme", "mon_d")
    assert down is not None
    alert = monitor_alert(down, seq=2, state="resolved", at=T0, window_start=T0, message="deleted")
    assert await store.delete_monitor("acme", "mon_d", alert=alert)
    assert [e.id for e in await store.pending_alerts(monitor_id="mon_d")] == ["uptime:mon_d:1", "uptime:mon_d:2"]
