"""The incident store and migration 0006 on SQLite and on a real PostgreSQL: one open incident per dedup key
under 50 concurrent alert events, exactly one entry per alert event, conditional status changes, the outbox,
silences."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from mintlog.adapters.db import migrations
from mintlog.adapters.db.incidents_sql import SqlIncidentStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.alerting import AlertEvent, AlertState
from mintlog.domain.incidents import EntryDraft, Incident, entry_event, new_entry_id, new_incident_id, plan_alert_change
from mintlog.domain.silences import Silence
from mintlog.domain.tenants import Tenant
from mintlog.errors import Conflict

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


@pytest.fixture
async def incidents(database_url: str) -> AsyncIterator[SqlIncidentStore]:
    metadata = SqlMetadataStore(database_url)
    await metadata.start()
    for tenant_id in ("acme", "globex"):
        await metadata.create_tenant(Tenant(id=tenant_id, name=tenant_id, created_at=NOW))
    try:
        yield SqlIncidentStore(metadata)
    finally:
        await metadata.close()


def alert(number: int, state: AlertState = "firing", *, dedup_key: str = "rule_1:g1", **changes: object) -> AlertEvent:
    fields: dict[str, object] = {
        "id": f"alert:rule_1:g1:{number}",
        "tenant_id": "acme",
        "rule_id": "rule_1",
        "rule_name": "high-errors",
        "dedup_key": dedup_key,
        "group": {"service": "checkout"},
        "previous_state": "pending",
        "state": state,
        "value": 6.0,
        "threshold": 5.0,
        "comparator": "gt",
        "window_start": NOW - timedelta(minutes=5),
        "window_end": NOW,
        "evaluated_at": NOW,
        "severity": "critical",
        "labels": {"team": "payments"},
        "message": "6 errors in 5 minutes",
        "channel_ids": ["ch_1"],
        "auto_resolve_incident": True,
    }
    fields.update(changes)
    return AlertEvent(**fields)  # type: ignore[arg-type]


async def apply(store: SqlIncidentStore, event: AlertEvent, at: datetime = NOW, silenced_by: str | None = None):
    return await store.apply_alert(
        event.tenant_id,
        event.dedup_key,
        event.id,
        partial(plan_alert_change, event, silenced_by=silenced_by, now=at),
    )


async def test_migration_0006_creates_and_drops_its_tables(database_url: str) -> None:
    await migrations.upgrade(database_url)
    await migrations.downgrade(database_url, "0005")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert not {"incidents", "incident_timeline", "silences"} & tables
        assert "tenants" in tables
        await migrations.upgrade(database_url)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert {"incidents", "incident_timeline", "silences"} <= tables
    finally:
        await engine.dispose()


async def test_a_firing_alert_opens_an_incident_and_a_refire_appends(incidents: SqlIncidentStore) -> None:
    opened = await apply(incidents, alert(1))
    assert opened is not None
    assert not opened.replayed
    incident = opened.incident
    assert (incident.status, incident.severity, incident.rule_id) == ("triggered", "critical", "rule_1")
    assert incident.title == "high-errors (service=checkout)"
    assert incident.channel_ids == ("ch_1",)
    assert incident.labels == {"team": "payments", "service": "checkout"}
    event = entry_event(opened.entry)
    assert event is not None
    assert (event.type, event.notify, event.id, event.actor) == ("incident.triggered", True, opened.entry.id, "system")

    refired = await apply(incidents, alert(2), NOW + timedelta(minutes=1))
    assert refired is not None
    assert refired.incident.id == incident.id
    assert refired.entry.event_type == "alert_refired"
    timeline = await incidents.timeline("acme", incident.id)
    assert [entry.event_type for entry in timeline] == ["triggered", "alert_refired"]
    assert all(entry.actor == "system" for entry in timeline)


async def test_a_redelivered_alert_event_writes_nothing_twice(incidents: SqlIncidentStore) -> None:
    first = await apply(incidents, alert(1))
    again = await apply(incidents, alert(1), NOW + timedelta(seconds=30))
    assert first is not None
    assert again is not None
    assert again.replayed
    assert again.entry == first.entry
    assert len(await incidents.list_incidents("acme")) == 1
    assert len(await incidents.timeline("acme", first.incident.id)) == 1


async def test_fifty_concurrent_firing_events_with_one_dedup_key_open_one_incident(
    incidents: SqlIncidentStore,
) -> None:
    results = await asyncio.gather(*(apply(incidents, alert(number)) for number in range(50)))
    assert all(result is not None for result in results)
    listed = await incidents.list_incidents("acme")
    assert len(listed) == 1
    timeline = await incidents.timeline("acme", listed[0].id)
    assert len(timeline) == 50
    assert [entry.event_type for entry in timeline].count("triggered") == 1


async def test_resolution_resolves_with_auto_resolve_and_only_appends_without(incidents: SqlIncidentStore) -> None:
    opened = await apply(incidents, alert(1))
    kept = await apply(incidents, alert(2, "resolved", auto_resolve_incident=False), NOW + timedelta(minutes=2))
    assert opened is not None
    assert kept is not None
    assert (kept.entry.event_type, kept.incident.status) == ("alert_resolved", "triggered")
    resolved = await apply(incidents, alert(3, "resolved"), NOW + timedelta(minutes=10))
    assert resolved is not None
    assert (resolved.entry.event_type, resolved.incident.status) == ("resolved", "resolved")
    assert resolved.incident.resolved_by == "system"
    assert resolved.incident.time_to_resolve_seconds == 600
    # Resolved: the next firing opens a new incident; a resolution without an open incident does nothing.
    assert await apply(incidents, alert(4, "resolved"), NOW + timedelta(minutes=11)) is None
    reopened = await apply(incidents, alert(5), NOW + timedelta(minutes=12))
    assert reopened is not None
    assert reopened.incident.id != opened.incident.id
    nodata = await apply(incidents, alert(6, "nodata", value=None), NOW + timedelta(minutes=13))
    assert nodata is not None
    assert nodata.entry.event_type == "alert_nodata"
    assert await apply(incidents, alert(7, "pending"), NOW + timedelta(minutes=14)) is None


def api_entry(event_type: str, at: datetime, actor: str = "mlk_abcdefgh", content: str | None = None) -> EntryDraft:
    entry_id = new_entry_id()
    return EntryDraft(
        id=entry_id,
        source_id=entry_id,
        occurred_at=at,
        event_type=event_type,  # type: ignore[arg-type]
        actor=actor,
        content=content,
        notify=event_type != "comment",
    )


def api_incident(tenant_id: str = "acme", at: datetime = NOW) -> Incident:
    return Incident(
        id=new_incident_id(),
        tenant_id=tenant_id,
        title="Database outage",
        severity="critical",
        status="triggered",
        created_by="mlk_abcdefgh",
        created_at=at,
        updated_at=at,
    )


async def test_status_changes_follow_the_machine_and_are_scoped_to_the_tenant(incidents: SqlIncidentStore) -> None:
    created = await incidents.create_incident(api_incident(), api_entry("triggered", NOW))
    incident_id = created.incident.id
    assert await incidents.change_status("globex", incident_id, "acknowledged", api_entry("acknowledged", NOW)) is None
    acked = await incidents.change_status(
        "acme", incident_id, "acknowledged", api_entry("acknowledged", NOW + timedelta(seconds=90))
    )
    assert acked is not None
    assert acked.incident.acknowledged_by == "mlk_abcdefgh"
    assert acked.incident.time_to_acknowledge_seconds == 90
    with pytest.raises(Conflict) as refused:
        await incidents.change_status("acme", incident_id, "acknowledged", api_entry("acknowledged", NOW))
    assert refused.value.code == "invalid_transition"
    assert await incidents.get_incident("globex", incident_id) is None
    commented = await incidents.append_entry("acme", incident_id, api_entry("comment", NOW, content="looking"))
    assert commented is not None
    assert commented.entry.content == "looking"


async def test_concurrent_status_changes_apply_once(incidents: SqlIncidentStore) -> None:
    created = await incidents.create_incident(api_incident(), api_entry("triggered", NOW))
    outcomes = await asyncio.gather(
        *(
            incidents.change_status("acme", created.incident.id, "resolved", api_entry("resolved", NOW))
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    assert sum(1 for outcome in outcomes if isinstance(outcome, Conflict)) == 9
    timeline = await incidents.timeline("acme", created.incident.id)
    assert [entry.event_type for entry in timeline] == ["triggered", "resolved"]


async def test_a_change_drafted_before_the_last_one_is_recorded_after_it(incidents: SqlIncidentStore) -> None:
    """Two racing requests: the later-committed one took its time first. The timeline keeps commit order."""
    created = await incidents.create_incident(api_incident(), api_entry("triggered", NOW))
    incident_id = created.incident.id
    acked = await incidents.change_status(
        "acme", incident_id, "acknowledged", api_entry("acknowledged", NOW + timedelta(seconds=10))
    )
    resolved = await incidents.change_status(
        "acme", incident_id, "resolved", api_entry("resolved", NOW + timedelta(seconds=5))
    )
    comment = await incidents.append_entry("acme", incident_id, api_entry("comment", NOW, content="late"))
    assert acked is not None
    assert resolved is not None
    assert comment is not None
    assert resolved.incident.resolved_at is not None
    assert resolved.incident.acknowledged_at is not None
    assert resolved.incident.resolved_at > resolved.incident.acknowledged_at
    assert resolved.entry.occurred_at == resolved.incident.resolved_at
    timeline = await incidents.timeline("acme", incident_id)
    assert [entry.event_type for entry in timeline] == ["triggered", "acknowledged", "resolved", "comment"]
    assert [entry.occurred_at for entry in timeline] == sorted({entry.occurred_at for entry in timeline})


async def test_lists_are_newest_first_filtered_and_paged(incidents: SqlIncidentStore) -> None:
    made = [
        (await incidents.create_incident(api_incident(at=NOW + timedelta(minutes=n)), api_entry("triggered", NOW)))
        for n in range(3)
    ]
    await incidents.create_incident(api_incident("globex"), api_entry("triggered", NOW))
    await incidents.change_status("acme", made[1].incident.id, "resolved", api_entry("resolved", NOW))
    listed = await incidents.list_incidents("acme")
    assert [incident.id for incident in listed] == [m.incident.id for m in reversed(made)]
    open_only = await incidents.list_incidents("acme", statuses=["triggered", "acknowledged"])
    assert [incident.id for incident in open_only] == [made[2].incident.id, made[0].incident.id]
    page = await incidents.list_incidents("acme", limit=1, before=(listed[0].created_at, listed[0].id))
    assert [incident.id for incident in page] == [made[1].incident.id]


async def test_unpublished_entries_wait_in_the_outbox_until_marked(incidents: SqlIncidentStore) -> None:
    opened = await apply(incidents, alert(1))
    assert opened is not None
    pending = await incidents.unpublished_entries(occurred_before=NOW + timedelta(seconds=5), limit=10)
    assert [entry.id for entry in pending] == [opened.entry.id]
    assert await incidents.unpublished_entries(occurred_before=NOW, limit=10) == []
    await incidents.mark_published([opened.entry.id], published_at=NOW)
    assert await incidents.unpublished_entries(occurred_before=NOW + timedelta(seconds=5), limit=10) == []


async def test_silences_are_listed_by_state_and_expire_once(incidents: SqlIncidentStore) -> None:
    def silence(silence_id: str, starts: int, ends: int) -> Silence:
        return Silence(
            id=silence_id,
            tenant_id="acme",
            rule_id="rule_1",
            starts_at=NOW + timedelta(minutes=starts),
            ends_at=NOW + timedelta(minutes=ends),
            created_by="mlk_abcdefgh",
            created_at=NOW + timedelta(seconds=len(silence_id) + starts),
        )

    for made in (silence("sil_past", -60, -30), silence("sil_now", -5, 60), silence("sil_later", 30, 90)):
        await incidents.create_silence(made)
    assert [s.id for s in await incidents.active_silences("acme", now=NOW)] == ["sil_now"]
    assert [s.id for s in await incidents.list_silences("acme", now=NOW, states=["expired"])] == ["sil_past"]
    assert len(await incidents.list_silences("acme", now=NOW)) == 3
    assert await incidents.active_silences("globex", now=NOW) == []
    assert await incidents.expire_silence("globex", "sil_now", now=NOW) is None
    expired = await incidents.expire_silence("acme", "sil_now", now=NOW)
    assert expired is not None
    assert expired.ends_at == NOW
    again = await incidents.expire_silence("acme", "sil_now", now=NOW + timedelta(minutes=1))
    assert again is not None
    assert again.ends_at == NOW
    assert await incidents.active_silences("acme", now=NOW) == []
