"""Retention through the running process: expired days disappear from search, nothing else does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import LogEvent
from tests.e2e.harness import MintlogProcess

MiB = 1024 * 1024


def stored_event(tenant_id: str, age: timedelta, now: datetime) -> LogEvent:
    timestamp = now - age
    return LogEvent(
        id=f"{tenant_id}-{age.days}d",
        tenant_id=tenant_id,
        timestamp=timestamp,
        received_at=timestamp,
        service="billing",
        level="info",
        message=f"written {age.days} days ago",
        host="web-1",
    )


def write_into_the_store(index_dir: Path, events: list[LogEvent]) -> None:
    """Old events cannot be ingested into the past through the API in a test's lifetime: write them directly."""

    async def write() -> None:
        store = TantivyLogStore(index_dir, writer_heap_bytes=16 * MiB)
        await store.start()
        try:
            await store.write(events)
        finally:
            await store.close()

    asyncio.run(write())


def found_ids(mintlog: MintlogProcess, key: str) -> list[str]:
    response = mintlog.search(key, {"size": 100})
    assert response.status_code == 200, response.text
    return [event["id"] for event in response.json()["events"]]


def bootstrap(mintlog: MintlogProcess, tenant: str, retention_days: int) -> str:
    result = mintlog.cli("admin", "bootstrap", "--tenant", tenant, "--retention-days", str(retention_days))
    return result.stdout.strip().splitlines()[-1]


def test_days_past_a_tenants_retention_are_dropped_and_no_longer_found(
    mintlog_factory: Callable[..., MintlogProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    short_key = bootstrap(mintlog_factory(data_dir), "shortlived", 30)
    long_key = bootstrap(mintlog_factory(data_dir), "longlived", 400)
    now = datetime.now(UTC)
    write_into_the_store(
        data_dir / "index",
        [
            stored_event("shortlived", timedelta(days=60), now),
            stored_event("shortlived", timedelta(days=1), now),
            stored_event("longlived", timedelta(days=60), now),
        ],
    )

    without_retention = mintlog_factory(data_dir, MINTLOG_RETENTION__ENABLED="false")
    without_retention.start()
    assert found_ids(without_retention, short_key) == ["shortlived-1d", "shortlived-60d"]
    assert without_retention.stop() == 0

    mintlog = mintlog_factory(data_dir)  # retention on, with the default hourly interval: the first run is at start
    mintlog.start()
    deadline = time.monotonic() + 20
    while found_ids(mintlog, short_key) != ["shortlived-1d"] and time.monotonic() < deadline:
        time.sleep(0.1)

    assert found_ids(mintlog, short_key) == ["shortlived-1d"]
    assert found_ids(mintlog, long_key) == ["longlived-60d"]
    metrics = httpx.get(f"{mintlog.api_url}/metrics", timeout=10).text
    assert "mintlog_retention_partitions_dropped_total 1.0" in metrics
    assert 'mintlog_retention_runs_total{outcome="completed"} 1.0' in metrics
    old_day = (now - timedelta(days=60)).date().isoformat()
    assert not (data_dir / "index" / "shortlived" / old_day).exists()
    assert (data_dir / "index" / "longlived" / old_day).is_dir()
    assert f"retention dropped partition shortlived/{old_day}" in mintlog.logs()
    assert mintlog.stop() == 0
