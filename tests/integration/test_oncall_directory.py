"""The `OnCallDirectory` contract of `SqlOnCallStore` on real databases (SQLite and PostgreSQL, migrated to
head): who is on call at an instant (layers, restrictions, the latest override), another tenant's person or
schedule is never returned, and a person a schedule names cannot be deleted, even by a delete racing the
schedule's write."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import text

from mintlog.adapters.db.oncall_sql import SqlOnCallStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.oncall_people import ContactMethod, NotificationRule, Person
from mintlog.domain.oncall_schedule import Layer, Restriction, ScheduleSpec
from mintlog.domain.tenants import Tenant
from mintlog.errors import Conflict
from mintlog.ports.oncall import OnCallDirectory
from mintlog.ports.oncall_store import Override, Schedule

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday


def person(person_id: str, tenant_id: str = "acme") -> Person:
    return Person(
        id=person_id,
        tenant_id=tenant_id,
        name=person_id.title(),
        email=f"{person_id}@example.com",
        time_zone="Europe/Berlin",
        contact_methods=[
            ContactMethod(id="email", type="email", address=f"{person_id}@example.com"),
            ContactMethod(id="chat", type="chat_webhook", address="https://93.184.216.34/hook"),
        ],
        notification_rules=[
            NotificationRule(after_minutes=0, contact_method_id="email"),
            NotificationRule(after_minutes=5, contact_method_id="chat"),
        ],
        created_at=T0,
        updated_at=T0,
    )


def schedule(schedule_id: str, *layers: Layer, tenant_id: str = "acme") -> Schedule:
    spec = ScheduleSpec(name=schedule_id, time_zone="Europe/Berlin", layers=list(layers))
    return Schedule(id=schedule_id, tenant_id=tenant_id, spec=spec, created_at=T0, updated_at=T0)


def daily(*participants: str, restrictions: list[Restriction] | None = None) -> Layer:
    return Layer(
        participants=list(participants),
        turn="daily",
        rotation_start=datetime(2026, 6, 1, 9, 0),
        restrictions=restrictions or [],
    )


@pytest.fixture
async def oncall(store: SqlMetadataStore) -> SqlOnCallStore:
    for tenant in ("acme", "other"):
        await store.create_tenant(Tenant(id=tenant, name=tenant, created_at=T0))
    directory = SqlOnCallStore(store)
    for person_id in ("ann", "bob", "cat", "dan"):
        await directory.create_person(person(person_id), max_per_tenant=100)
    await directory.create_person(person("zed", tenant_id="other"), max_per_tenant=100)
    return directory


async def test_people_on_call_applies_layers_restrictions_and_the_latest_override(oncall: SqlOnCallStore) -> None:
    directory: OnCallDirectory = oncall
    weekday_lunch = [Restriction(start="12:00", end="13:00", days=["mon", "tue", "wed", "thu", "fri"])]
    await oncall.create_schedule(
        schedule("primary", daily("ann", "bob"), daily("cat", restrictions=weekday_lunch)), max_per_tenant=10
    )
    # Berlin summer (UTC+2): the 09:00 hand-off is 07:00Z, lunch is 10:00Z-11:00Z.
    assert [p.id for p in await directory.people_on_call("acme", "primary", T0 + timedelta(hours=8))] == ["ann"]
    assert [p.id for p in await directory.people_on_call("acme", "primary", T0 + timedelta(hours=10))] == ["cat"]
    assert [p.id for p in await directory.people_on_call("acme", "primary", T0 + timedelta(days=1, hours=8))] == ["bob"]
    assert await directory.people_on_call("acme", "primary", T0) == []  # before the rotation starts

    for override_id, person_id, created in (("o1", "dan", 1), ("o2", "ann", 2)):
        await oncall.create_override(
            Override(
                id=override_id,
                tenant_id="acme",
                schedule_id="primary",
                person_id=person_id,
                start=T0 + timedelta(hours=9),
                end=T0 + timedelta(hours=12),
                created_at=T0 + timedelta(minutes=created),
            ),
            max_per_schedule=10,
        )
    found = await directory.people_on_call("acme", "primary", T0 + timedelta(hours=10))
    assert [p.id for p in found] == ["ann"]  # the override created last wins, above the lunch layer
    assert found[0].notification_rules[1] == NotificationRule(after_minutes=5, contact_method_id="chat")
    assert found[0].contact_methods[1].address == "https://93.184.216.34/hook"


async def test_another_tenants_person_and_schedule_are_never_returned(oncall: SqlOnCallStore) -> None:
    await oncall.create_schedule(schedule("primary", daily("ann")), max_per_tenant=10)
    assert await oncall.get_person("other", "ann") is None
    assert (await oncall.get_person("acme", "ann")) == person("ann")
    assert await oncall.people_on_call("other", "primary", T0 + timedelta(hours=8)) == []
    assert await oncall.get_schedule("other", "primary") is None
    assert not await oncall.delete_person("other", "ann")
    assert not await oncall.delete_schedule("other", "primary")
    with pytest.raises(Conflict) as caught:
        await oncall.create_schedule(schedule("sneaky", daily("zed")), max_per_tenant=10)
    assert caught.value.code == "person_not_found"


async def test_a_person_in_a_layer_or_an_override_cannot_be_deleted(oncall: SqlOnCallStore) -> None:
    await oncall.create_schedule(schedule("primary", daily("ann")), max_per_tenant=10)
    await oncall.create_override(
        Override(
            id="o1",
            tenant_id="acme",
            schedule_id="primary",
            person_id="bob",
            start=T0,
            end=T0 + timedelta(hours=1),
            created_at=T0,
        ),
        max_per_schedule=10,
    )
    for person_id in ("ann", "bob"):
        with pytest.raises(Conflict) as caught:
            await oncall.delete_person("acme", person_id)
        assert caught.value.code == "person_in_use"
        assert caught.value.extra["schedules"] == ["primary"]
    assert await oncall.delete_person("acme", "cat")
    assert await oncall.delete_schedule("acme", "primary")
    assert await oncall.delete_person("acme", "ann")
    assert await oncall.delete_person("acme", "bob")


async def test_a_delete_racing_a_schedules_write_never_leaves_the_schedule_without_its_person(
    oncall: SqlOnCallStore,
) -> None:
    outcomes = await asyncio.gather(
        oncall.create_schedule(schedule("racing", daily("dan")), max_per_tenant=10),
        oncall.delete_person("acme", "dan"),
        return_exceptions=True,
    )
    stored = await oncall.get_schedule("acme", "racing")
    still_there = await oncall.get_person("acme", "dan")
    if stored is not None:
        assert still_there is not None, outcomes
    else:
        assert isinstance(outcomes[0], Conflict), outcomes


async def test_limits_are_enforced_per_tenant(oncall: SqlOnCallStore) -> None:
    with pytest.raises(Conflict) as caught:
        await oncall.create_person(person("eve"), max_per_tenant=4)
    assert caught.value.code == "too_many_people"
    await oncall.create_person(person("yan", tenant_id="other"), max_per_tenant=2)


async def test_a_lookup_sees_at_once_what_another_instance_changed(oncall: SqlOnCallStore, database_url: str) -> None:
    await oncall.create_schedule(schedule("primary", daily("ann", "bob")), max_per_tenant=10)
    at = T0 + timedelta(hours=8)
    assert [p.id for p in await oncall.people_on_call("acme", "primary", at)] == ["ann"]
    other_instance = SqlMetadataStore(database_url, migrate_on_start=False)
    await other_instance.start()
    try:
        writer = SqlOnCallStore(other_instance)
        changed = schedule("primary", daily("cat", "dan"))
        await writer.replace_schedule(msgspec.structs.replace(changed, updated_at=T0 + timedelta(seconds=1)))
        assert [p.id for p in await oncall.people_on_call("acme", "primary", at)] == ["cat"]
        override = Override(
            id="o1", tenant_id="acme", schedule_id="primary", person_id="bob", start=at, end=at + timedelta(hours=1),
            created_at=T0,
        )  # fmt: skip
        await writer.create_override(override, max_per_schedule=10)
        assert [p.id for p in await oncall.people_on_call("acme", "primary", at)] == ["bob"]
        await writer.replace_person(msgspec.structs.replace(person("bob"), name="Robert"))
        assert [p.name for p in await oncall.people_on_call("acme", "primary", at)] == ["Robert"]
        assert await writer.delete_override("acme", "primary", "o1")
        assert [p.id for p in await oncall.people_on_call("acme", "primary", at)] == ["cat"]
        assert await writer.delete_schedule("acme", "primary")
        assert await oncall.people_on_call("acme", "primary", at) == []
    finally:
        await other_instance.close()


async def test_a_lookup_survives_its_pooled_connection_being_closed(postgres_database_url: str) -> None:
    # The read pool does not ping at checkout: a connection the server closed (a restart, an idle timeout) is
    # found closed by the lookup itself, which sends it again on a new one. (SQLite has no server to close it.)
    store = SqlMetadataStore(postgres_database_url)
    await store.start()
    try:
        await store.create_tenant(Tenant(id="acme", name="acme", created_at=T0))
        oncall = SqlOnCallStore(store)
        await oncall.create_person(person("ann"), max_per_tenant=10)
        await oncall.create_schedule(schedule("primary", daily("ann")), max_per_tenant=10)
        at = T0 + timedelta(hours=8)
        assert [p.id for p in await oncall.people_on_call("acme", "primary", at)] == ["ann"]
        async with store.engine.connect() as connection:
            closed = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert any(row[0] for row in closed)
        assert [p.id for p in await oncall.people_on_call("acme", "primary", at)] == ["ann"]
    finally:
        await store.close()
