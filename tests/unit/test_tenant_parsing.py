"""The normalizer's per-tenant text parsing: read from the metadata database, kept for a bounded time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from mintlog.domain.extraction_rules import ExtractionRule, ExtractionRuleSpec
from mintlog.domain.tenants import Tenant
from mintlog.errors import DatabaseUnavailable
from mintlog.ports.metadata import MetadataStore
from mintlog.ports.parsing import ExtractionRuleStore
from mintlog.roles.pipeline.tenant_parsing import TenantParsingCache
from mintlog.settings import ParsingSettings

NOW = datetime(2026, 6, 1, tzinfo=UTC)


class FakeParsingData:
    """The tenant and rule reads the cache makes, with a switch to make the database unreachable."""

    def __init__(self) -> None:
        self.zone = "Europe/Berlin"
        self.rules: list[ExtractionRule] = []
        self.down = False
        self.reads = 0

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        if self.down:
            raise DatabaseUnavailable("down")
        self.reads += 1
        return Tenant(id=tenant_id, name=tenant_id, time_zone=self.zone, created_at=NOW)

    async def list_rules(self, tenant_id: str, **_: Any) -> list[ExtractionRule]:
        if self.down:
            raise DatabaseUnavailable("down")
        return self.rules


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def cache(data: FakeParsingData, clock: Clock) -> TenantParsingCache:
    return TenantParsingCache(
        cast("MetadataStore", data),
        cast("ExtractionRuleStore", data),
        ParsingSettings(tenant_config_ttl_seconds=10),
        clock=clock,
    )


def rule(name: str, *, enabled: bool = True) -> ExtractionRule:
    spec = ExtractionRuleSpec(name=name, pattern=r"(?P<x>\d+)", enabled=enabled)
    return ExtractionRule(id=f"xrule_{name}", tenant_id="acme", spec=spec, created_at=NOW, updated_at=NOW)


async def test_a_change_is_seen_once_the_entry_is_older_than_the_ttl() -> None:
    data, clock = FakeParsingData(), Clock()
    parsings = cache(data, clock)

    first = await parsings.get("acme")
    data.zone = "Asia/Tokyo"
    data.rules = [rule("on"), rule("off", enabled=False)]
    clock.now += 9.9
    still = await parsings.get("acme")
    clock.now += 0.2
    fresh = await parsings.get("acme")

    assert first.zone == ZoneInfo("Europe/Berlin")
    assert first.rules == ()
    assert still is first
    assert fresh.zone == ZoneInfo("Asia/Tokyo")
    assert [compiled.name for compiled in fresh.rules] == ["on"]


async def test_while_the_database_is_down_the_last_read_is_used_and_a_new_tenant_waits() -> None:
    data, clock = FakeParsingData(), Clock()
    parsings = cache(data, clock)
    known = await parsings.get("acme")
    data.down = True
    clock.now += 60

    assert await parsings.get("acme") is known
    with pytest.raises(DatabaseUnavailable):
        await parsings.get("other")


async def test_concurrent_misses_read_the_tenant_once() -> None:
    data, clock = FakeParsingData(), Clock()
    parsings = cache(data, clock)

    results = await asyncio.gather(*(parsings.get("acme") for _ in range(20)))

    assert data.reads == 1
    assert all(result is results[0] for result in results)
