"""The tenant's routes in SQLite and PostgreSQL: replaced whole and read back in order, per tenant, gone with the
tenant's policies untouched; and migration 0019 creates and drops its table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from mintlog.adapters.db import migrations
from mintlog.adapters.db.escalation_sql import SqlEscalationStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.oncall_routes import RouteSpec, RoutingTable
from mintlog.domain.tenants import Tenant

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


@pytest.fixture
async def escalation(database_url: str) -> AsyncIterator[SqlEscalationStore]:
    metadata = SqlMetadataStore(database_url)
    await metadata.start()
    for tenant_id in ("acme", "globex"):
        await metadata.create_tenant(Tenant(id=tenant_id, name=tenant_id, created_at=NOW))
    try:
        yield SqlEscalationStore(metadata)
    finally:
        await metadata.close()


async def test_migration_0019_creates_and_drops_its_table(database_url: str) -> None:
    await migrations.upgrade(database_url)
    await migrations.downgrade(database_url, "0018")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert "oncall_routes" not in tables
        assert "escalation_policies" in tables
        await migrations.upgrade(database_url)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert "oncall_routes" in tables
    finally:
        await engine.dispose()


async def test_routes_are_replaced_whole_kept_in_order_and_per_tenant(escalation: SqlEscalationStore) -> None:
    assert await escalation.get_routes("acme") is None
    first = [
        RouteSpec(policy_id="esp_db", name="db", labels={"team": "db"}),
        RouteSpec(policy_id="esp_crit", severities=["critical", "high"], label_patterns={"service": "pay.*"}),
    ]
    await escalation.replace_routes(RoutingTable(tenant_id="acme", routes=first, updated_at=NOW))
    stored = await escalation.get_routes("acme")
    assert stored is not None
    assert (stored.routes, stored.updated_at) == (first, NOW)
    assert await escalation.get_routes("globex") is None
    later = NOW + timedelta(minutes=1)
    await escalation.replace_routes(RoutingTable(tenant_id="acme", routes=first[::-1], updated_at=later))
    reordered = await escalation.get_routes("acme")
    assert reordered is not None
    assert ([route.policy_id for route in reordered.routes], reordered.updated_at) == (["esp_crit", "esp_db"], later)
    await escalation.replace_routes(RoutingTable(tenant_id="acme", routes=[], updated_at=later))
    emptied = await escalation.get_routes("acme")
    assert emptied is not None
    assert emptied.routes == []
