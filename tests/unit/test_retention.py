"""The retention job with fakes: which days go, lease handling, and failures isolated per tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import cast

import msgspec
import pytest

from mintlog.domain.tenants import RetentionBasis, Tenant
from mintlog.errors import StoreUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.logstore import LogStore
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.pipeline.retention import RETENTION_LEASE, RetentionJob, retention_cutoff
from mintlog.settings import RetentionSettings
from tests.fakes import FakeWallClock as Clock

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = RetentionSettings(interval_seconds=3600, lease_seconds=7200)


class FakeMetadata:
    """Tenants and leases with the semantics of `SqlMetadataStore` (see tests/integration/test_job_leases.py)."""

    def __init__(self, tenants: Sequence[Tenant]) -> None:
        self.tenants = sorted(tenants, key=lambda tenant: tenant.id)
        self.leases: dict[str, tuple[str, datetime]] = {}
        self.pages_listed = 0

    async def list_tenants(self, *, after: str | None = None, limit: int = 50) -> Sequence[Tenant]:
        self.pages_listed += 1
        return [tenant for tenant in self.tenants if after is None or tenant.id > after][:limit]

    async def try_claim(self, job: str, holder: str, *, until: datetime, now: datetime) -> bool:
        current = self.leases.get(job)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self.leases[job] = (holder, until)
        return True

    async def release(self, job: str, holder: str) -> None:
        if self.leases.get(job, ("", NOW))[0] == holder:
            del self.leases[job]


class FakeStore:
    """Day partitions per tenant; `failing` tenants raise like an unreachable store."""

    def __init__(self, days: dict[str, list[date]]) -> None:
        self.days = {tenant_id: sorted(tenant_days) for tenant_id, tenant_days in days.items()}
        self.failing: set[str] = set()
        self.calls: list[tuple[str, date]] = []
        self.bases: dict[str, RetentionBasis] = {}
        self.on_drop: Callable[[str], None] = lambda _tenant_id: None

    async def drop_partitions_before(
        self, tenant_id: str, day: date, *, basis: RetentionBasis = "event_time"
    ) -> list[str]:
        self.calls.append((tenant_id, day))
        self.bases[tenant_id] = basis
        self.on_drop(tenant_id)
        if tenant_id in self.failing:
            raise StoreUnavailable("tantivy store failed to drop partitions")
        tenant_days = self.days.get(tenant_id, [])
        dropped = [old for old in tenant_days if old < day]
        self.days[tenant_id] = [kept for kept in tenant_days if kept >= day]
        return [f"{tenant_id}/{old.isoformat()}" for old in dropped]


def tenant(tenant_id: str, retention_days: int = 30, **changes: object) -> Tenant:
    created = Tenant(id=tenant_id, name=tenant_id, retention_days=retention_days, created_at=NOW - timedelta(days=400))
    return msgspec.structs.replace(created, **changes)


def days_ago(*offsets: int) -> list[date]:
    return [(NOW - timedelta(days=offset)).date() for offset in offsets]


def make_job(
    metadata: FakeMetadata,
    store: FakeStore,
    *,
    holder: str = "instance-a",
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    page_size: int = 100,
) -> RetentionJob:
    return RetentionJob(
        metadata=cast("MetadataStore", metadata),
        store=cast("LogStore", store),
        settings=SETTINGS,
        metrics=metrics or Metrics(),
        clock=clock or Clock(),
        holder=holder,
        tenant_page_size=page_size,
    )


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# --- which days go -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "retention_days", "oldest_kept"),
    [
        (NOW, 30, date(2026, 10, 27)),
        (datetime(2026, 11, 26, 0, 0, tzinfo=UTC), 30, date(2026, 10, 27)),
        (datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC), 30, date(2026, 10, 27)),
        (datetime(2026, 11, 26, 0, 30, tzinfo=UTC), 1, date(2026, 11, 25)),
        (datetime(2026, 3, 1, 6, 0, tzinfo=UTC), 1, date(2026, 2, 28)),
        (datetime(2028, 3, 1, 6, 0, tzinfo=UTC), 1, date(2028, 2, 29)),
        # 01:00 at UTC+2 is 23:00 UTC the day before: days are UTC days.
        (datetime(2026, 11, 26, 1, 0, tzinfo=timezone(timedelta(hours=2))), 1, date(2026, 11, 24)),
    ],
)
def test_the_oldest_kept_day_is_the_utc_day_of_now_minus_retention(
    now: datetime, retention_days: int, oldest_kept: date
) -> None:
    assert retention_cutoff(now, retention_days) == oldest_kept


def test_no_dropped_day_holds_an_event_younger_than_retention_and_at_most_one_extra_day_is_kept() -> None:
    for retention_days in (1, 2, 7, 30, 365):
        for minutes in range(0, 2 * 24 * 60, 17):
            now = NOW + timedelta(minutes=minutes)
            oldest_kept = retention_cutoff(now, retention_days)
            end_of_newest_dropped_day = datetime.combine(oldest_kept, time(), tzinfo=UTC)
            # Its last instant is older than retention_days ...
            assert now - end_of_newest_dropped_day >= timedelta(days=retention_days)
            # ... and the oldest kept day is needed: part of it is younger than retention_days.
            assert now - (end_of_newest_dropped_day + timedelta(days=1)) < timedelta(days=retention_days)


def test_a_cutoff_needs_an_aware_now_and_a_positive_retention() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        retention_cutoff(datetime(2026, 11, 26, 12, 0), 30)
    with pytest.raises(ValueError, match="at least 1"):
        retention_cutoff(NOW, 0)


# --- one run ------------------------------------------------------------------------------------------------


async def test_a_run_drops_each_tenants_expired_days_by_its_own_retention() -> None:
    metadata = FakeMetadata(
        [
            tenant("acme", 30),
            tenant("globex", 7, suspended=True),
            tenant("initech", 90, deleted_at=NOW - timedelta(days=1), suspended=True),
        ]
    )
    store = FakeStore(
        {"acme": days_ago(40, 31, 30, 29, 0), "globex": days_ago(40, 8, 7, 6, 0), "initech": days_ago(91, 90, 40)}
    )
    metrics = Metrics()

    run = await make_job(metadata, store, metrics=metrics).run()

    assert run is not None
    assert run.completed
    assert run.dropped == [
        "acme/2026-10-17",
        "acme/2026-10-26",
        "globex/2026-10-17",
        "globex/2026-11-18",
        "initech/2026-08-27",
    ]
    assert store.days == {
        "acme": days_ago(30, 29, 0),
        "globex": days_ago(7, 6, 0),
        "initech": days_ago(90, 40),
    }
    assert (run.tenants_checked, run.failed_tenants) == (3, [])
    assert sample(metrics, "mintlog_retention_partitions_dropped_total") == 5
    assert sample(metrics, "mintlog_retention_runs_total", outcome="completed") == 1


async def test_each_tenant_is_held_to_its_own_retention_basis() -> None:
    metadata = FakeMetadata([tenant("acme"), tenant("audits", 365, retention_basis="received_at")])
    store = FakeStore({"acme": days_ago(60, 0), "audits": days_ago(400, 0)})

    run = await make_job(metadata, store).run()

    assert run is not None
    assert store.bases == {"acme": "event_time", "audits": "received_at"}
    assert store.calls == [("acme", date(2026, 10, 27)), ("audits", date(2025, 11, 26))]


async def test_one_tenants_failure_does_not_stop_the_others() -> None:
    metadata = FakeMetadata([tenant("acme"), tenant("globex"), tenant("initech")])
    store = FakeStore({tenant_id: days_ago(60, 0) for tenant_id in ("acme", "globex", "initech")})
    store.failing.add("globex")
    metrics = Metrics()

    run = await make_job(metadata, store, metrics=metrics).run()

    assert run is not None
    assert run.completed
    assert run.dropped == ["acme/2026-09-27", "initech/2026-09-27"]
    assert run.failed_tenants == ["globex"]
    assert store.days["globex"] == days_ago(60, 0)
    assert sample(metrics, "mintlog_retention_failures_total") == 1
    assert sample(metrics, "mintlog_retention_partitions_dropped_total") == 2

    store.failing.clear()  # the next run finishes the job
    again = await make_job(metadata, store, metrics=metrics).run()
    assert again is not None
    assert again.dropped == ["globex/2026-09-27"]


async def test_a_tenant_with_a_retention_below_one_day_is_skipped_and_counted() -> None:
    metadata = FakeMetadata([tenant("acme", 0), tenant("globex", 30)])
    store = FakeStore({"acme": days_ago(60, 1, 0), "globex": days_ago(60, 0)})
    metrics = Metrics()

    run = await make_job(metadata, store, metrics=metrics).run()

    assert run is not None
    assert run.failed_tenants == ["acme"]
    assert store.days["acme"] == days_ago(60, 1, 0)
    assert run.dropped == ["globex/2026-09-27"]
    assert sample(metrics, "mintlog_retention_failures_total") == 1


async def test_every_tenant_is_reached_a_page_at_a_time() -> None:
    tenant_ids = [f"tenant-{index}" for index in range(5)]
    metadata = FakeMetadata([tenant(tenant_id) for tenant_id in tenant_ids])
    store = FakeStore({tenant_id: days_ago(31, 0) for tenant_id in tenant_ids})

    run = await make_job(metadata, store, page_size=2).run()

    assert run is not None
    assert run.completed
    assert [tenant_id for tenant_id, _ in store.calls] == tenant_ids
    assert {day for _, day in store.calls} == {date(2026, 10, 27)}
    assert metadata.pages_listed == 3
    assert run.tenants_checked == 5


# --- the lease ----------------------------------------------------------------------------------------------


async def test_without_the_lease_nothing_is_dropped() -> None:
    metadata = FakeMetadata([tenant("acme")])
    metadata.leases[RETENTION_LEASE] = ("instance-b", NOW + timedelta(minutes=5))
    store = FakeStore({"acme": days_ago(60, 0)})
    metrics = Metrics()

    assert await make_job(metadata, store, metrics=metrics).run() is None

    assert store.calls == []
    assert store.days["acme"] == days_ago(60, 0)
    assert sample(metrics, "mintlog_retention_runs_total", outcome="skipped") == 1
    assert metadata.leases[RETENTION_LEASE] == ("instance-b", NOW + timedelta(minutes=5))


async def test_the_holder_keeps_the_lease_between_runs_and_hands_it_over_at_stop() -> None:
    metadata = FakeMetadata([tenant("acme")])
    store = FakeStore({"acme": days_ago(60, 0)})
    clock = Clock()
    first = make_job(metadata, store, holder="instance-a", clock=clock)
    second = make_job(metadata, store, holder="instance-b", clock=clock)

    assert await first.run() is not None
    assert metadata.leases[RETENTION_LEASE] == ("instance-a", NOW + timedelta(seconds=SETTINGS.lease_seconds))
    clock.now = NOW + timedelta(seconds=SETTINGS.interval_seconds)
    assert await second.run() is None
    assert await first.run() is not None  # renewed: still the holder one interval later
    assert await second.run() is None

    await first.stop()

    assert RETENTION_LEASE not in metadata.leases
    assert await second.run() is not None


async def test_a_lease_lost_part_way_cuts_the_run_short() -> None:
    tenant_ids = [f"tenant-{index}" for index in range(4)]
    metadata = FakeMetadata([tenant(tenant_id) for tenant_id in tenant_ids])
    store = FakeStore({tenant_id: days_ago(31, 0) for tenant_id in tenant_ids})
    clock = Clock()

    def another_instance_takes_over(tenant_id: str) -> None:
        if tenant_id == "tenant-1":  # e.g. this instance stalled past its lease
            clock.now = NOW + timedelta(seconds=SETTINGS.lease_seconds + 1)
            metadata.leases[RETENTION_LEASE] = ("instance-b", clock.now + timedelta(hours=1))

    store.on_drop = another_instance_takes_over
    metrics = Metrics()

    run = await make_job(metadata, store, clock=clock, metrics=metrics, page_size=2).run()

    assert run is not None
    assert not run.completed
    assert [tenant_id for tenant_id, _ in store.calls] == ["tenant-0", "tenant-1"]
    assert store.days["tenant-2"] == days_ago(31, 0)
    assert sample(metrics, "mintlog_retention_runs_total", outcome="aborted") == 1


async def test_start_runs_a_first_pass_at_once_and_stop_releases_the_lease() -> None:
    metadata = FakeMetadata([tenant("acme")])
    store = FakeStore({"acme": days_ago(60, 0)})
    dropped = asyncio.Event()
    store.on_drop = lambda _tenant_id: dropped.set()
    job = make_job(metadata, store)

    await job.start()
    await asyncio.wait_for(dropped.wait(), timeout=10)  # the interval is an hour: only the first pass can do it
    await job.stop()

    assert store.days["acme"] == days_ago(0)
    assert RETENTION_LEASE not in metadata.leases
    assert len(store.calls) == 1  # stopping does not start another pass
