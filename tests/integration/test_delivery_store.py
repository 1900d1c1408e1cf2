"""`SqlNotificationStore` on SQLite and a real PostgreSQL: channels, idempotent deliveries, and claims that give
each due attempt to exactly one sender, even when senders race or one dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from mintlog.adapters.db import migrations
from mintlog.adapters.db.notifications_sql import SqlNotificationStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.channels import Channel, ChannelChanges, DeliveryFilter, DeliveryOutcome
from mintlog.domain.tenants import Tenant
from mintlog.roles.notify.delivery_worker import deliveries_for

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[SqlMetadataStore, SqlNotificationStore]]:
    metadata = SqlMetadataStore(database_url)
    await metadata.start()
    try:
        for tenant_id in ("acme", "other"):
            await metadata.create_tenant(Tenant(id=tenant_id, name=tenant_id, created_at=NOW))
        yield metadata, SqlNotificationStore(metadata)
    finally:
        await metadata.close()


def channel(channel_id: str, tenant_id: str = "acme", *, created_at: datetime = NOW) -> Channel:
    return Channel(
        id=channel_id,
        tenant_id=tenant_id,
        name=f"hook {channel_id}",
        channel_type="webhook",
        url="https://hooks.example.com/x",
        headers={"X-Team": "sre"},
        secret="mysecret",
        is_active=True,
        created_at=created_at,
        updated_at=created_at,
    )


def incident_event(event_id: str, channel_ids: list[str], tenant_id: str = "acme") -> IncidentEvent:
    return IncidentEvent(
        id=event_id,
        type="incident.triggered",
        tenant_id=tenant_id,
        incident_id="inc_1",
        title="High errors",
        severity="critical",
        status="triggered",
        occurred_at=NOW,
        actor="system",
        notify=True,
        channel_ids=channel_ids,
    )


async def test_migration_0005_runs_up_down_and_up_again(database_url: str) -> None:
    await migrations.upgrade(database_url)
    await migrations.downgrade(database_url, "0004")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "notification_channels" not in tables
        assert "notification_deliveries" not in tables
    finally:
        await engine.dispose()
    await migrations.upgrade(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert {"notification_channels", "notification_deliveries"} <= set(tables)
    finally:
        await engine.dispose()


async def test_channels_are_per_tenant_listed_oldest_first_and_updated_in_place(
    stores: tuple[SqlMetadataStore, SqlNotificationStore],
) -> None:
    _, store = stores
    for index in range(3):
        await store.create_channel(channel(f"chn_{index}", created_at=NOW + index * SECOND))
    await store.create_channel(channel("chn_theirs", "other"))
    assert await store.get_channel("other", "chn_0") is None
    assert [c.id for c in await store.list_channels("acme", limit=2)] == ["chn_0", "chn_1"]
    assert [c.id for c in await store.list_channels("acme", after=(NOW + SECOND, "chn_1"))] == ["chn_2"]

    assert await store.update_channel("other", "chn_0", ChannelChanges(name="x"), updated_at=NOW) is None
    await store.disable_channel("acme", "chn_0", reason="the receiver answered 410 Gone", disabled_at=NOW)
    disabled = await store.get_channel("acme", "chn_0")
    assert disabled is not None
    assert not disabled.is_active
    assert disabled.disabled_reason
    assert await store.active_channel_ids("acme", ["chn_2", "chn_0", "chn_theirs", "chn_1"]) == ["chn_2", "chn_1"]
    enabled = await store.update_channel(
        "acme", "chn_0", ChannelChanges(is_active=True, secret="new"), updated_at=NOW + SECOND
    )
    assert enabled is not None
    assert enabled.is_active
    assert enabled.disabled_reason is None
    assert enabled.secret == "new"
    assert enabled.headers == {"X-Team": "sre"}
    assert not await store.delete_channel("other", "chn_0")
    assert await store.delete_channel("acme", "chn_0")
    assert await store.get_channel("acme", "chn_0") is None


async def test_deliveries_are_inserted_once_per_event_and_channel(
    stores: tuple[SqlMetadataStore, SqlNotificationStore],
) -> None:
    _, store = stores
    await store.create_channel(channel("chn_a"))
    await store.create_channel(channel("chn_b"))
    event = incident_event("evt_1", ["chn_a", "chn_b"])
    assert await store.enqueue_deliveries(deliveries_for(event, ["chn_a", "chn_b"], now=NOW)) == 2
    # A redelivered event, even after a first attempt started, changes nothing.
    claimed = await store.claim_due_deliveries("s1", now=NOW, until=NOW + 60 * SECOND, limit=1)
    assert await store.enqueue_deliveries(deliveries_for(event, ["chn_a", "chn_b"], now=NOW + SECOND)) == 0
    listed = await store.list_deliveries("acme", DeliveryFilter(event_id="evt_1"))
    assert len(listed) == 2
    assert {d.status for d in listed} == {"pending", "sending"}
    assert next(d for d in listed if d.id == claimed[0].id).attempts == 1
    assert await store.list_deliveries("other", DeliveryFilter()) == []
    assert await store.get_delivery("other", claimed[0].id) is None


async def test_two_senders_racing_get_each_due_delivery_exactly_once(
    stores: tuple[SqlMetadataStore, SqlNotificationStore],
) -> None:
    _, store = stores
    await store.create_channel(channel("chn_a"))
    for index in range(40):
        event = incident_event(f"evt_{index}", ["chn_a"])
        await store.enqueue_deliveries(deliveries_for(event, ["chn_a"], now=NOW))

    async def claim_all(holder: str) -> list[str]:
        got: list[str] = []
        while True:
            batch = await store.claim_due_deliveries(holder, now=NOW, until=NOW + 60 * SECOND, limit=3)
            if not batch:
                return got
            got.extend(d.id for d in batch)

    first, second = await asyncio.gather(claim_all("s1"), claim_all("s2"))
    assert len(first) + len(second) == 40
    assert not set(first) & set(second)
    assert len(set(first) | set(second)) == 40


async def test_an_expired_claim_is_taken_over_and_the_late_sender_cannot_record(
    stores: tuple[SqlMetadataStore, SqlNotificationStore],
) -> None:
    _, store = stores
    await store.create_channel(channel("chn_a"))
    await store.enqueue_deliveries(deliveries_for(incident_event("evt_1", ["chn_a"]), ["chn_a"], now=NOW))
    [mine] = await store.claim_due_deliveries("dead-sender", now=NOW, until=NOW + 10 * SECOND, limit=5)
    assert await store.claim_due_deliveries("s2", now=NOW + 5 * SECOND, until=NOW + 60 * SECOND, limit=5) == []
    [theirs] = await store.claim_due_deliveries("s2", now=NOW + 10 * SECOND, until=NOW + 70 * SECOND, limit=5)
    assert theirs.id == mine.id
    assert theirs.attempts == 2
    assert theirs.claimed_by == "s2"

    late = DeliveryOutcome("delivered", NOW + 11 * SECOND, 5, 200, None)
    assert not await store.record_outcome(mine.id, "dead-sender", late)
    failed = DeliveryOutcome("failed", NOW + 11 * SECOND, 5, 503, "the receiver answered 503", NOW + 40 * SECOND)
    assert await store.record_outcome(theirs.id, "s2", failed)
    stored = await store.get_delivery("acme", mine.id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.last_status_code == 503
    assert await store.claim_due_deliveries("s3", now=NOW + 39 * SECOND, until=NOW + 99 * SECOND, limit=5) == []
    [again] = await store.claim_due_deliveries("s3", now=NOW + 40 * SECOND, until=NOW + 99 * SECOND, limit=5)
    assert again.round_attempts == 3


async def test_a_410_outcome_disables_the_channel_and_a_retry_restarts_the_round(
    stores: tuple[SqlMetadataStore, SqlNotificationStore],
) -> None:
    _, store = stores
    await store.create_channel(channel("chn_a"))
    await store.enqueue_deliveries(deliveries_for(incident_event("evt_1", ["chn_a"]), ["chn_a"], now=NOW))
    [claimed] = await store.claim_due_deliveries("s1", now=NOW, until=NOW + 60 * SECOND, limit=5)
    gone = DeliveryOutcome("dead", NOW, 3, 410, "the receiver answered 410", disable_channel="410 Gone")
    assert await store.record_outcome(claimed.id, "s1", gone)
    disabled = await store.get_channel("acme", "chn_a")
    assert disabled is not None
    assert not disabled.is_active
    assert disabled.disabled_reason == "410 Gone"
    assert [d.id for d in await store.list_deliveries("acme", DeliveryFilter(status="dead"))] == [claimed.id]

    assert await store.retry_delivery("other", claimed.id, now=NOW) is None
    retried = await store.retry_delivery("acme", claimed.id, now=NOW + SECOND)
    assert retried is not None
    assert retried.status == "pending"
    assert retried.round_attempts == 0
    assert retried.attempts == 1
    [again] = await store.claim_due_deliveries("s1", now=NOW + SECOND, until=NOW + 60 * SECOND, limit=5)
    assert again.attempts == 2
    assert again.round_attempts == 1
    # While an attempt is in progress, a retry changes nothing.
    unchanged = await store.retry_delivery("acme", claimed.id, now=NOW + 2 * SECOND)
    assert unchanged is not None
    assert unchanged.status == "sending"
