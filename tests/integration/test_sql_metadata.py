"""The metadata store and its migrations on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mintlog.adapters.db import migrations
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.keys import generate_api_key
from mintlog.domain.tenants import ApiKey, Tenant
from mintlog.errors import Conflict

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}"
    else:
        yield request.getfixturevalue("postgres_database_url")


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
