"""Retention on a real metadata database (PostgreSQL and SQLite) and a real Tantivy store.

Two instances race for every run: exactly one drops, the other skips. Old partitions go; young ones and
other tenants' partitions stay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import LogEvent
from mintlog.domain.tenants import Tenant
from mintlog.metrics import Metrics
from mintlog.ports.logstore import SearchQuery
from mintlog.roles.pipeline.retention import RetentionJob
from mintlog.settings import RetentionSettings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MiB = 1024 * 1024
SETTINGS = RetentionSettings(interval_seconds=3600, lease_seconds=7200)
# Tenant → (retention_days, ages in days of its events).
TENANTS = {"acme": (30, (45, 31, 30, 1)), "globex": (7, (10, 8, 7, 0)), "initech": (365, (45, 31))}


def day(age_days: int) -> date:
    return (NOW - timedelta(days=age_days)).date()


def event(tenant_id: str, age_days: int) -> LogEvent:
    timestamp = NOW - timedelta(days=age_days)
    return LogEvent(
        id=f"{tenant_id}-{age_days}",
        tenant_id=tenant_id,
        timestamp=timestamp,
        received_at=timestamp,
        service="checkout",
        level="info",
        message=f"{age_days} days old",
        host="web-1",
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}"
    else:
        yield request.getfixturevalue("postgres_database_url")


@pytest.fixture
async def instances(database_url: str) -> AsyncIterator[tuple[SqlMetadataStore, SqlMetadataStore]]:
    """The metadata database as two instances see it: one connection pool each."""
    first, second = SqlMetadataStore(database_url), SqlMetadataStore(database_url)
    await first.start()
    await second.start()
    try:
        for tenant_id, (retention_days, _) in TENANTS.items():
            await first.create_tenant(
                Tenant(id=tenant_id, name=tenant_id, retention_days=retention_days, created_at=NOW)
            )
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TantivyLogStore]:
    tantivy = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB, max_open_writers=8)
    await tantivy.start()
    await tantivy.write([event(tenant_id, age) for tenant_id, (_, ages) in TENANTS.items() for age in ages])
    try:
        yield tantivy
    finally:
        await tantivy.close()


async def stored_ages(store: TantivyLogStore, tenant_id: str) -> list[int]:
    page = await store.search(SearchQuery(tenant_id, now=NOW, size=100))
    return [int(found.id.rsplit("-", 1)[1]) for found in page.events]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def job(metadata: SqlMetadataStore, store: TantivyLogStore, holder: str, metrics: Metrics) -> RetentionJob:
    return RetentionJob(
        metadata=metadata, store=store, settings=SETTINGS, metrics=metrics, clock=lambda: NOW, holder=holder
    )


async def test_of_two_racing_instances_one_drops_the_expired_days_and_the_other_skips(
    instances: tuple[SqlMetadataStore, SqlMetadataStore], store: TantivyLogStore
) -> None:
    assert await stored_ages(store, "acme") == [1, 30, 31, 45]
    metrics_a, metrics_b = Metrics(), Metrics()
    job_a = job(instances[0], store, "instance-a", metrics_a)
    job_b = job(instances[1], store, "instance-b", metrics_b)

    runs = await asyncio.gather(job_a.run(), job_b.run())

    done = [run for run in runs if run is not None]
    assert len(done) == 1, runs
    assert done[0].dropped == [
        f"acme/{day(45)}",
        f"acme/{day(31)}",
        f"globex/{day(10)}",
        f"globex/{day(8)}",
    ]
    assert await stored_ages(store, "acme") == [1, 30]
    assert await stored_ages(store, "globex") == [0, 7]
    assert await stored_ages(store, "initech") == [31, 45]
    assert sorted(path.name for path in (store.root / "acme").iterdir()) == [day(30).isoformat(), day(1).isoformat()]
    winner_metrics, loser_metrics = (metrics_a, metrics_b) if runs[0] is not None else (metrics_b, metrics_a)
    assert sample(winner_metrics, "mintlog_retention_runs_total", outcome="completed") == 1
    assert sample(winner_metrics, "mintlog_retention_partitions_dropped_total") == 4
    assert sample(loser_metrics, "mintlog_retention_runs_total", outcome="skipped") == 1
    assert sample(loser_metrics, "mintlog_retention_runs_total", outcome="completed") == 0
    assert sample(loser_metrics, "mintlog_retention_partitions_dropped_total") == 0

    # The winner keeps the lease for the next runs; once it stops, the other instance takes over.
    winner, loser = (job_a, job_b) if runs[0] is not None else (job_b, job_a)
    assert await loser.run() is None
    await winner.stop()
    taken_over = await loser.run()
    assert taken_over is not None
    assert taken_over.dropped == []
    assert taken_over.tenants_checked == 3
