"""Job leases (`JobLeases`) on SQLite and a real PostgreSQL: one holder at a time, even when instances race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from mintlog.adapters.db import migrations
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.tenants import Tenant

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


async def test_a_lease_is_held_by_one_holder_until_it_expires(store: SqlMetadataStore) -> None:
    assert await store.try_claim("retention", "a", until=NOW + 5 * MINUTE, now=NOW)
    assert not await store.try_claim("retention", "b", until=NOW + 10 * MINUTE, now=NOW + MINUTE)
    # The holder renews; the other still waits for the renewed expiry, not the first one.
    assert await store.try_claim("retention", "a", until=NOW + 10 * MINUTE, now=NOW + 4 * MINUTE)
    assert not await store.try_claim("retention", "b", until=NOW + 20 * MINUTE, now=NOW + 6 * MINUTE)
    # Expired: the other takes it over, and the first holder has lost it.
    assert await store.try_claim("retention", "b", until=NOW + 20 * MINUTE, now=NOW + 10 * MINUTE)
    assert not await store.try_claim("retention", "a", until=NOW + 30 * MINUTE, now=NOW + 11 * MINUTE)


async def test_a_released_lease_can_be_claimed_at_once_but_only_its_holder_releases_it(
    store: SqlMetadataStore,
) -> None:
    assert await store.try_claim("retention", "a", until=NOW + 5 * MINUTE, now=NOW)
    await store.release("retention", "b")
    assert not await store.try_claim("retention", "b", until=NOW + 5 * MINUTE, now=NOW)
    await store.release("retention", "a")
    await store.release("retention", "a")  # idempotent
    assert await store.try_claim("retention", "b", until=NOW + 5 * MINUTE, now=NOW)


async def test_leases_of_different_jobs_are_independent(store: SqlMetadataStore) -> None:
    assert await store.try_claim("retention", "a", until=NOW + 5 * MINUTE, now=NOW)
    assert await store.try_claim("alert-rule:42", "b", until=NOW + 5 * MINUTE, now=NOW)
    assert not await store.try_claim("alert-rule:42", "a", until=NOW + 5 * MINUTE, now=NOW)


async def test_a_lease_must_end_after_now(store: SqlMetadataStore) -> None:
    with pytest.raises(ValueError, match="after now"):
        await store.try_claim("retention", "a", until=NOW, now=NOW)
    assert await store.try_claim("retention", "b", until=NOW + MINUTE, now=NOW)


async def test_racing_instances_never_both_win_a_lease(database_url: str) -> None:
    """Eight instances, each with its own connection pool, claim the same free (then expired) lease at once."""
    instances = [SqlMetadataStore(database_url) for _ in range(8)]
    for instance in instances:
        await instance.start()
    try:
        await asyncio.gather(*(instance.ping() for instance in instances))  # connections open before the race
        for round_number in range(10):
            job = f"race-{round_number}"
            free = await asyncio.gather(
                *(
                    instance.try_claim(job, f"holder-{index}", until=NOW + MINUTE, now=NOW)
                    for index, instance in enumerate(instances)
                )
            )
            assert free.count(True) == 1, free
            expired = await asyncio.gather(
                *(
                    instance.try_claim(job, f"next-{index}", until=NOW + 3 * MINUTE, now=NOW + 2 * MINUTE)
                    for index, instance in enumerate(instances)
                )
            )
            assert expired.count(True) == 1, expired
            winner = expired.index(True)
            others = [index for index in range(len(instances)) if index != winner]
            assert not await instances[others[0]].try_claim(
                job, f"next-{others[0]}", until=NOW + 4 * MINUTE, now=NOW + 2 * MINUTE
            )
            assert await instances[winner].try_claim(
                job, f"next-{winner}", until=NOW + 4 * MINUTE, now=NOW + 2 * MINUTE
            )
    finally:
        for instance in instances:
            await instance.close()


async def test_migration_0003_adds_and_removes_only_the_lease_table(database_url: str) -> None:
    await migrations.upgrade(database_url, "0002")
    store = SqlMetadataStore(database_url)  # migrates to head at start
    await store.start()
    try:
        await store.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
        assert await store.try_claim("retention", "a", until=NOW + MINUTE, now=NOW)
    finally:
        await store.close()

    await migrations.downgrade(database_url, "0002")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert "job_leases" not in tables
    assert {"tenants", "api_keys", "audit_log"} <= tables

    await migrations.upgrade(database_url)
    store = SqlMetadataStore(database_url, migrate_on_start=False)
    await store.start()
    try:
        assert await store.get_tenant("acme") is not None
        assert await store.try_claim("retention", "b", until=NOW + MINUTE, now=NOW)
    finally:
        await store.close()
