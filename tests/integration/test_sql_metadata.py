"""The metadata store and its migrations on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from mintlog.adapters.db import migrations
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.audit import AuditEntry, AuditQuery
from mintlog.domain.keys import generate_api_key
from mintlog.domain.tenants import ApiKey, Tenant, TenantChanges
from mintlog.errors import Conflict, UnprocessableEntity

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def test_migrations_run_up_down_and_up_again(database_url: str) -> None:
    await migrations.upgrade(database_url)
    await migrations.downgrade(database_url, "base")
    await migrations.upgrade(database_url)
    store = SqlMetadataStore(database_url, migrate_on_start=False)
    await store.start()
    try:
        await store.ping()
        assert await store.get_tenant("nobody") is None
    finally:
        await store.close()


async def test_tenants_and_keys_roundtrip(database_url: str) -> None:
    store = SqlMetadataStore(database_url)
    await store.start()
    try:
        tenant = await store.create_tenant(
            Tenant(id="acme", name="Acme", plan="pro", retention_days=90, created_at=NOW)
        )
        assert await store.get_tenant("acme") == tenant
        with pytest.raises(Conflict):
            await store.create_tenant(Tenant(id="acme", name="Again", created_at=NOW))
        generated = generate_api_key()
        key = ApiKey(
            id="key_1",
            tenant_id="acme",
            name="ci",
            key_hash=generated.key_hash,
            prefix=generated.prefix,
            scopes=("ingest:logs", "search:logs"),
            rate_limit=5000,
            expires_at=NOW,
            created_at=NOW,
        )
        await store.create_api_key(key)
        found = await store.find_api_key(generated.key_hash)
        assert found == (key, tenant)
        assert await store.find_api_key(generate_api_key().key_hash) is None
        await store.touch_api_keys({"key_1": NOW})
        assert [listed.id for listed in await store.list_api_keys("acme")] == ["key_1"]
    finally:
        await store.close()


# --- 0002: audit log, deleted tenants, key rotation ---------------------------------------------------------


def make_key(tenant_id: str, key_id: str, *, created_at: datetime = NOW, **changes: Any) -> ApiKey:
    generated = generate_api_key()
    fields: dict[str, Any] = {
        "id": key_id,
        "tenant_id": tenant_id,
        "name": "ci",
        "key_hash": generated.key_hash,
        "prefix": generated.prefix,
        "scopes": ("ingest:logs",),
        "created_at": created_at,
    }
    fields.update(changes)
    return ApiKey(**fields)


async def test_migration_0002_keeps_rows_on_the_way_up_and_down(database_url: str) -> None:
    await migrations.upgrade(database_url, "0001")
    old = SqlMetadataStore(database_url, migrate_on_start=False)
    await old.start()
    try:
        async with old.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO tenants (id, name, plan, retention_days, suspended, created_at, updated_at) "
                    "VALUES ('acme', 'Acme', 'pro', 90, false, :now, :now)"
                ),
                {"now": NOW},
            )
    finally:
        await old.close()
    await migrations.upgrade(database_url)  # through 0002, to the schema the current models read
    store = SqlMetadataStore(database_url, migrate_on_start=False)
    await store.start()
    try:
        tenant = await store.get_tenant("acme")
        assert tenant is not None
        assert (tenant.plan, tenant.deleted_at) == ("pro", None)
        await store.append_audit(audit_entry("aud_1", NOW))
        assert [entry.id for entry in await store.list_audit(AuditQuery())] == ["aud_1"]
    finally:
        await store.close()
    await migrations.downgrade(database_url, "0001")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            tenant_columns = await connection.run_sync(
                lambda sync: {column["name"] for column in inspect(sync).get_columns("tenants")}
            )
            key_columns = await connection.run_sync(
                lambda sync: {column["name"] for column in inspect(sync).get_columns("api_keys")}
            )
            names = (await connection.execute(text("SELECT name FROM tenants"))).scalars().all()
    finally:
        await engine.dispose()
    assert "audit_log" not in tables
    assert "deleted_at" not in tenant_columns
    assert "rotated_from" not in key_columns
    assert names == ["Acme"]
    await migrations.upgrade(database_url)


async def test_tenants_are_listed_by_id_a_page_at_a_time(store: SqlMetadataStore) -> None:
    for tenant_id in ("c", "a", "b", "d"):
        await store.create_tenant(Tenant(id=tenant_id, name=tenant_id.upper(), created_at=NOW))
    first = await store.list_tenants(limit=3)
    assert [tenant.id for tenant in first] == ["a", "b", "c"]
    assert [tenant.id for tenant in await store.list_tenants(after="c", limit=3)] == ["d"]
    assert await store.list_tenants(after="d") == []
    assert first[0].updated_at == NOW


async def test_updating_a_tenant_changes_only_what_is_given(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", plan="free", retention_days=30, created_at=NOW))
    later = NOW + timedelta(hours=1)
    updated = await store.update_tenant("acme", TenantChanges(plan="pro"), updated_at=later)
    assert updated is not None
    assert (updated.plan, updated.retention_days, updated.suspended, updated.updated_at) == ("pro", 30, False, later)
    suspended = await store.update_tenant("acme", TenantChanges(suspended=True, retention_days=7), updated_at=later)
    assert suspended is not None
    assert (suspended.plan, suspended.retention_days, suspended.suspended) == ("pro", 7, True)
    assert await store.get_tenant("acme") == suspended
    assert await store.update_tenant("nobody", TenantChanges(plan="pro"), updated_at=later) is None


async def test_a_tenants_retention_basis_is_stored_and_changed_alone(store: SqlMetadataStore) -> None:
    created = await store.create_tenant(
        Tenant(id="audits", name="Audits", retention_days=36500, retention_basis="received_at", created_at=NOW)
    )
    plain = await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    changed = await store.update_tenant("audits", TenantChanges(retention_basis="event_time"), updated_at=NOW)

    assert (created.retention_days, created.retention_basis) == (36500, "received_at")
    assert plain.retention_basis == "event_time"
    assert changed is not None
    assert (changed.retention_days, changed.retention_basis) == (36500, "event_time")
    assert await store.get_tenant("audits") == changed


async def test_a_deleted_tenant_is_suspended_and_read_only(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    deleted_at = NOW + timedelta(hours=1)
    deleted = await store.update_tenant(
        "acme", TenantChanges(suspended=True, deleted_at=deleted_at), updated_at=deleted_at
    )
    assert deleted is not None
    assert (deleted.suspended, deleted.deleted_at) == (True, deleted_at)
    again = await store.update_tenant(
        "acme", TenantChanges(suspended=True, deleted_at=deleted_at + timedelta(hours=1)), updated_at=deleted_at
    )
    assert again == deleted
    with pytest.raises(Conflict) as refused:
        await store.update_tenant("acme", TenantChanges(suspended=False), updated_at=deleted_at)
    assert refused.value.code == "tenant_deleted"
    assert await store.get_tenant("acme") == deleted
    with pytest.raises(Conflict):
        await store.create_tenant(Tenant(id="acme", name="Again", created_at=NOW))


async def test_a_key_is_found_only_within_its_tenant(store: SqlMetadataStore) -> None:
    for tenant_id in ("a", "b"):
        await store.create_tenant(Tenant(id=tenant_id, name=tenant_id, created_at=NOW))
    key = await store.create_api_key(make_key("a", "key_a"))
    assert await store.get_api_key("a", "key_a") == key
    assert await store.get_api_key("b", "key_a") is None
    assert await store.revoke_api_key("b", "key_a", revoked_at=NOW) is None
    assert await store.rotate_api_key("b", "key_a", make_key("b", "key_b"), retire_at=NOW) is None
    assert (await store.get_api_key("a", "key_a")) == key
    assert await store.get_api_key("b", "key_b") is None


async def test_keys_are_listed_oldest_first_a_page_at_a_time(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    await store.create_tenant(Tenant(id="other", name="Other", created_at=NOW))
    await store.create_api_key(make_key("acme", "key_c", created_at=NOW))
    await store.create_api_key(make_key("acme", "key_b", created_at=NOW))
    await store.create_api_key(make_key("acme", "key_a", created_at=NOW + timedelta(seconds=1)))
    await store.create_api_key(make_key("other", "key_z", created_at=NOW))
    first = await store.list_api_keys("acme", limit=2)
    assert [key.id for key in first] == ["key_b", "key_c"]
    rest = await store.list_api_keys("acme", after=(first[-1].created_at, first[-1].id), limit=2)
    assert [key.id for key in rest] == ["key_a"]
    assert [key.id for key in await store.list_api_keys("acme")] == ["key_b", "key_c", "key_a"]


async def test_last_used_at_is_recorded_and_listed(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    await store.create_api_key(make_key("acme", "key_1"))
    used_at = NOW + timedelta(minutes=5)
    await store.touch_api_keys({"key_1": used_at})
    [listed] = await store.list_api_keys("acme")
    assert listed.last_used_at == used_at


async def test_revoking_is_idempotent_and_keeps_the_first_time(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    key = await store.create_api_key(make_key("acme", "key_1"))
    revoked = await store.revoke_api_key("acme", "key_1", revoked_at=NOW + timedelta(minutes=1))
    assert revoked is not None
    assert revoked.revoked_at == NOW + timedelta(minutes=1)
    again = await store.revoke_api_key("acme", "key_1", revoked_at=NOW + timedelta(minutes=2))
    assert again == revoked
    found = await store.find_api_key(key.key_hash)
    assert found is not None
    assert found[0].status(NOW + timedelta(minutes=3)) == "revoked"
    assert await store.revoke_api_key("acme", "key_missing", revoked_at=NOW) is None


async def test_rotation_inserts_the_new_key_and_retires_the_old_one(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    await store.create_api_key(make_key("acme", "key_old", expires_at=NOW + timedelta(days=30)))
    rotated_at = NOW + timedelta(hours=1)
    replacement = make_key("acme", "key_new", created_at=rotated_at, rotated_from="key_old")
    result = await store.rotate_api_key("acme", "key_old", replacement, retire_at=rotated_at + timedelta(days=1))
    assert result is not None
    old, new = result
    assert old.expires_at == rotated_at + timedelta(days=1)
    assert old.revoked_at is None
    assert new == replacement
    assert await store.get_api_key("acme", "key_new") == replacement
    assert await store.get_api_key("acme", "key_old") == old


async def test_rotation_never_extends_the_old_key_and_grace_zero_revokes_it(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    soon = NOW + timedelta(minutes=10)
    await store.create_api_key(make_key("acme", "key_short", expires_at=soon))
    result = await store.rotate_api_key(
        "acme", "key_short", make_key("acme", "key_2", created_at=NOW), retire_at=NOW + timedelta(days=1)
    )
    assert result is not None
    assert result[0].expires_at == soon
    await store.create_api_key(make_key("acme", "key_now"))
    result = await store.rotate_api_key("acme", "key_now", make_key("acme", "key_3", created_at=NOW), retire_at=NOW)
    assert result is not None
    assert result[0].revoked_at == NOW


async def test_a_revoked_or_expired_key_cannot_be_rotated(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    await store.create_api_key(make_key("acme", "key_revoked", revoked_at=NOW))
    await store.create_api_key(make_key("acme", "key_expired", expires_at=NOW))
    for key_id, code in (("key_revoked", "key_revoked"), ("key_expired", "key_expired")):
        with pytest.raises(Conflict) as refused:
            await store.rotate_api_key("acme", key_id, make_key("acme", f"new_{key_id}", created_at=NOW), retire_at=NOW)
        assert refused.value.code == code
        assert await store.get_api_key("acme", f"new_{key_id}") is None


def audit_entry(entry_id: str, at: datetime, **changes: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "id": entry_id,
        "occurred_at": at,
        "tenant_id": "acme",
        "actor_tenant_id": "ops",
        "actor_key_id": "key_ops",
        "actor_key_prefix": "mlk_opsopsop",
        "action": "key.create",
        "target_type": "api_key",
        "target_id": "key_1",
        "result": "ok",
        "detail": {"scopes": ["ingest:logs"], "rate_limit": None},
    }
    fields.update(changes)
    return AuditEntry(**fields)


async def test_the_audit_log_is_read_newest_first_a_page_at_a_time(store: SqlMetadataStore) -> None:
    entries = [audit_entry(f"aud_{index}", NOW + timedelta(seconds=index // 2)) for index in range(5)]
    for entry in entries:
        await store.append_audit(entry)
    first = await store.list_audit(AuditQuery(limit=2))
    assert [entry.id for entry in first] == ["aud_4", "aud_3"]
    second = await store.list_audit(AuditQuery(limit=2, before=(first[-1].occurred_at, first[-1].id)))
    assert [entry.id for entry in second] == ["aud_2", "aud_1"]
    third = await store.list_audit(AuditQuery(limit=2, before=(second[-1].occurred_at, second[-1].id)))
    assert [entry.id for entry in third] == ["aud_0"]
    assert third[0] == entries[0]


async def test_the_audit_log_filters_combine(store: SqlMetadataStore) -> None:
    await store.append_audit(audit_entry("aud_a", NOW))
    await store.append_audit(
        audit_entry(
            "aud_b",
            NOW + timedelta(minutes=1),
            tenant_id="beta",
            actor_tenant_id="beta",
            actor_key_id="key_beta",
            actor_key_prefix="mlk_betabeta",
            action="key.revoke",
            result="denied",
        )
    )
    await store.append_audit(audit_entry("aud_c", NOW + timedelta(minutes=2), tenant_id="beta", action="tenant.update"))

    async def ids(**filters: Any) -> list[str]:
        return [entry.id for entry in await store.list_audit(AuditQuery(**filters))]

    assert await ids() == ["aud_c", "aud_b", "aud_a"]
    assert await ids(tenant_id="acme") == ["aud_a"]
    assert await ids(tenant_id="beta") == ["aud_c", "aud_b"]
    assert await ids(tenant_id="ops") == ["aud_c", "aud_a"]  # entries by its keys count too
    assert await ids(actor="key_beta") == ["aud_b"]
    assert await ids(actor="mlk_opsopsop") == ["aud_c", "aud_a"]
    assert await ids(action="key.revoke") == ["aud_b"]
    assert await ids(result="denied") == ["aud_b"]
    assert await ids(start=NOW + timedelta(minutes=1)) == ["aud_c", "aud_b"]
    assert await ids(end=NOW + timedelta(minutes=1)) == ["aud_a"]
    assert await ids(tenant_id="beta", action="tenant.update", start=NOW, end=NOW + timedelta(hours=1)) == ["aud_c"]


async def test_a_value_postgresql_cannot_hold_is_refused_for_good_never_unavailable(postgres_database_url: str) -> None:
    store = SqlMetadataStore(postgres_database_url)
    await store.start()
    try:
        with pytest.raises(UnprocessableEntity, match=r'"UTF8": 0x00 \(SQLSTATE 22021\)') as looked_up:
            await store.get_tenant("a\x00b")
        with pytest.raises(UnprocessableEntity) as written:
            await store.create_tenant(Tenant(id="acme", name="a\x00b", created_at=NOW))

        assert (looked_up.value.code, written.value.code) == ("unstorable_value", "unstorable_value")
        await store.ping()
        assert await store.get_tenant("acme") is None
    finally:
        await store.close()
