"""The archive manifest, the tenants' archive retention and the archive retention job on SQLite and a real
PostgreSQL, with the filesystem blob store."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from mintlog.adapters.blob.filesystem import FilesystemBlobStore
from mintlog.adapters.db import migrations
from mintlog.adapters.db.archive_sql import SqlArchiveManifest
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.tenants import Tenant, TenantChanges
from mintlog.metrics import Metrics
from mintlog.ports.archive import ArchiveObject
from mintlog.roles.pipeline.archive import object_key, pack_lines
from mintlog.roles.pipeline.archive_retention import ARCHIVE_RETENTION_LEASE, ArchiveRetentionJob
from mintlog.settings import ArchiveSettings

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def entry(tenant_id: str, hour: datetime, first_id: str, *, count: int = 3, digest: str = "0" * 64) -> ArchiveObject:
    return ArchiveObject(
        tenant_id=tenant_id,
        key=object_key(tenant_id, hour, first_id),
        day=hour.date(),
        hour=hour.hour,
        event_count=count,
        bytes=100 + count,
        sha256=digest,
        first_event_at=hour,
        last_event_at=hour + timedelta(minutes=59),
        created_at=NOW,
    )


async def test_the_migration_goes_down_and_up_again(database_url: str) -> None:
    await migrations.upgrade(database_url)
    await migrations.downgrade(database_url, "0006")

    def columns_and_tables(connection: object) -> tuple[set[str], set[str]]:
        inspector = inspect(connection)
        return {column["name"] for column in inspector.get_columns("tenants")}, set(inspector.get_table_names())

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            columns, tables = await connection.run_sync(columns_and_tables)
        assert "archive_retention_days" not in columns
        assert "archive_objects" not in tables
        await migrations.upgrade(database_url)
        async with engine.connect() as connection:
            columns, tables = await connection.run_sync(columns_and_tables)
        assert "archive_retention_days" in columns
        assert "archive_objects" in tables
    finally:
        await engine.dispose()


async def test_objects_are_listed_by_receive_hour_in_key_order_per_tenant(store: SqlMetadataStore) -> None:
    manifest = SqlArchiveManifest(store)
    hours = [datetime(2026, 11, 26, hour, tzinfo=UTC) for hour in (10, 11, 12, 23)]
    for hour in hours:
        await manifest.record(entry("acme", hour, f"b{hour.hour}-00000"))
        await manifest.record(entry("acme", hour, f"a{hour.hour}-00000"))
    await manifest.record(entry("globex", hours[1], "g-00000"))

    found = await manifest.list_objects(
        "acme", start=hours[1] + timedelta(minutes=30), end=hours[2] + timedelta(seconds=1)
    )
    assert [item.key for item in found] == [
        "archive/acme/2026-11-26/11/a11-00000.ndjson.gz",
        "archive/acme/2026-11-26/11/b11-00000.ndjson.gz",
        "archive/acme/2026-11-26/12/a12-00000.ndjson.gz",
        "archive/acme/2026-11-26/12/b12-00000.ndjson.gz",
    ]
    # `to` on an hour boundary excludes that hour; pages continue after a key.
    exact = await manifest.list_objects("acme", start=hours[0], end=hours[2], limit=3)
    assert [item.hour for item in exact] == [10, 10, 11]
    rest = await manifest.list_objects("acme", start=hours[0], end=hours[2], after=exact[-1].key)
    assert [item.key for item in rest] == ["archive/acme/2026-11-26/11/b11-00000.ndjson.gz"]
    # Across midnight, and never another tenant's objects.
    late = await manifest.list_objects("acme", start=hours[3], end=hours[3] + timedelta(days=1))
    assert [item.hour for item in late] == [23, 23]
    assert [item.key for item in await manifest.list_objects("globex", start=hours[0], end=NOW)] == [
        "archive/globex/2026-11-26/11/g-00000.ndjson.gz"
    ]
    assert found[0] == entry("acme", hours[1], "a11-00000")


async def test_recording_a_key_again_replaces_its_row(store: SqlMetadataStore) -> None:
    manifest = SqlArchiveManifest(store)
    hour = datetime(2026, 11, 26, 10, tzinfo=UTC)
    await manifest.record(entry("acme", hour, "b-00000", count=3))
    await manifest.record(entry("acme", hour, "b-00000", count=5, digest="f" * 64))
    [row] = await manifest.list_objects("acme", start=hour, end=NOW)
    assert (row.event_count, row.sha256, row.bytes) == (5, "f" * 64, 105)


async def test_a_tenants_archive_retention_is_set_kept_and_reset(store: SqlMetadataStore) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme", archive_retention_days=400, created_at=NOW))
    assert (await store.get_tenant("acme")) is not None
    kept = await store.update_tenant("acme", TenantChanges(retention_days=7), updated_at=NOW)
    assert kept is not None
    assert (kept.retention_days, kept.archive_retention_days) == (7, 400)
    changed = await store.update_tenant("acme", TenantChanges(archive_retention_days=30), updated_at=NOW)
    assert changed is not None
    assert changed.archive_retention_days == 30
    reset = await store.update_tenant(
        "acme", msgspec.convert({"archive_retention_days": None}, TenantChanges), updated_at=NOW
    )
    assert reset is not None
    assert reset.archive_retention_days is None
    tenant = await store.get_tenant("acme")
    assert tenant is not None
    assert (tenant.retention_days, tenant.archive_retention_days) == (7, None)


async def write_object(blobs: FilesystemBlobStore, manifest: SqlArchiveManifest, tenant_id: str, hour: datetime) -> str:
    packed = pack_lines([b'{"id":"x"}\n'])
    key = object_key(tenant_id, hour, f"{hour:%d%H}-00000")
    await blobs.put(key, packed.data)
    await manifest.record(
        ArchiveObject(
            tenant_id=tenant_id,
            key=key,
            day=hour.date(),
            hour=hour.hour,
            event_count=1,
            bytes=len(packed.data),
            sha256=hashlib.sha256(packed.data).hexdigest(),
            first_event_at=hour,
            last_event_at=hour,
            created_at=hour,
        )
    )
    return key


async def test_archive_retention_deletes_objects_then_rows_on_the_lease_holder_only(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "objects")
    await blobs.start()
    manifest = SqlArchiveManifest(store)
    # acme keeps its archive 10 days (and its searchable data 1 day: independent); globex uses the default
    # (forever); initech says 2 days.
    await store.create_tenant(Tenant(id="acme", name="a", retention_days=1, archive_retention_days=10, created_at=NOW))
    await store.create_tenant(Tenant(id="globex", name="g", created_at=NOW))
    await store.create_tenant(
        Tenant(id="initech", name="i", retention_days=365, archive_retention_days=2, created_at=NOW)
    )
    ages = (0, 2, 9, 11, 30)
    keys = {
        (tenant_id, age): await write_object(blobs, manifest, tenant_id, NOW - timedelta(days=age))
        for tenant_id in ("acme", "globex", "initech")
        for age in ages
    }

    def job(holder: str) -> ArchiveRetentionJob:
        return ArchiveRetentionJob(
            metadata=store,
            manifest=manifest,
            blobs=blobs,
            settings=ArchiveSettings(),
            metrics=Metrics(),
            clock=lambda: NOW,
            holder=holder,
            tenant_page_size=2,
            object_page_size=2,
        )

    first, second = job("instance-1"), job("instance-2")
    run = await first.run()
    assert run is not None
    assert run.completed
    assert await second.run() is None  # the lease is held by instance-1
    expected_gone = {keys["acme", 11], keys["acme", 30], keys["initech", 9], keys["initech", 11], keys["initech", 30]}
    assert set(run.deleted) == expected_gone
    stored = {info.key for info in await blobs.list("archive/")}
    assert stored == set(keys.values()) - expected_gone
    for tenant_id in ("acme", "globex", "initech"):
        listed = await manifest.list_objects(tenant_id, start=NOW - timedelta(days=60), end=NOW + timedelta(hours=1))
        assert {item.key for item in listed} == {
            key for (owner, _), key in keys.items() if owner == tenant_id
        } - expected_gone
    # A second run finds nothing more; after release the other instance may run.
    again = await first.run()
    assert again is not None
    assert again.deleted == []
    await first.stop()
    assert await store.try_claim(ARCHIVE_RETENTION_LEASE, "instance-2", until=NOW + timedelta(hours=1), now=NOW)
    other = await second.run()
    assert other is not None
    assert other.deleted == []


async def test_the_default_archive_retention_applies_to_tenants_that_set_none(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "objects")
    await blobs.start()
    manifest = SqlArchiveManifest(store)
    await store.create_tenant(Tenant(id="globex", name="g", created_at=NOW))
    old = await write_object(blobs, manifest, "globex", NOW - timedelta(days=40))
    young = await write_object(blobs, manifest, "globex", NOW - timedelta(days=20))
    job = ArchiveRetentionJob(
        metadata=store,
        manifest=manifest,
        blobs=blobs,
        settings=ArchiveSettings(default_retention_days=30),
        metrics=Metrics(),
        clock=lambda: NOW,
    )
    run = await job.run()
    assert run is not None
    assert run.deleted == [old]
    assert [info.key for info in await blobs.list("archive/")] == [young]
