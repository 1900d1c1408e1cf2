"""Retention: each tenant's `retention_days` enforced by deleting whole partitions, one instance at a time.

Which partitions go. At instant `now`, a tenant with `retention_days = N` keeps the UTC day that contains
`now - N days` and every later one (`retention_cutoff`); a partition is dropped once every event in it is
before that day by the tenant's `retention_basis` (`mintlog.adapters.logstore.periods.expired`):

- `event_time` (the default): a day partition goes once its day is before the cutoff, so an event goes
  between N days and N days + 1 day + one run interval after its timestamp; a month partition (events that
  arrived more than two days late: imported history, a long backlog) goes once its whole month is before
  the cutoff, up to a month later than its oldest event's expiry.
- `received_at`: a day partition goes once its day plus the two late days are before the cutoff (its
  events were all received by then), a month partition once the month its events were received in is; an
  event goes between N days and N days + 3 days (day partition) or + 1 month (month partition) + one run
  interval after it was received.

No event younger than N days by the tenant's basis is ever deleted. Example: retention 30 at
2026-11-26T12:00Z keeps 2026-10-27 and later and drops day partitions of 2026-10-26 and earlier. Every
tenant is covered, suspended and deleted ones included (a deleted tenant's data ages out like any other);
a tenant with `retention_days` below 1 is skipped and counted as a failure.

Who runs it. Every pipeline instance runs `RetentionJob` at start and then every `interval_seconds`, but a
run first claims the lease `retention` in the metadata database (`JobLeases.try_claim`) until
`now + lease_seconds`. The instance that holds it renews it on each run and before each page of tenants; the
others skip. With `lease_seconds > interval_seconds` one instance keeps the lease for as long as it runs;
it releases the lease when it stops, and when it dies another instance takes over once the lease expires.
Dropping is idempotent, so a run cut short is simply finished by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mintlog.domain.retention import retention_cutoff
from mintlog.domain.tenants import Tenant
from mintlog.metrics import Metrics
from mintlog.ports.logstore import LogStore
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.pipeline.tenant_sweep import TenantSweep
from mintlog.settings import RetentionSettings

__all__ = ["RETENTION_LEASE", "RetentionJob", "RetentionRun", "retention_cutoff"]

logger = logging.getLogger(__name__)

RETENTION_LEASE = "retention"
"""The job name of the retention lease in `JobLeases`."""

_TENANT_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one run did. `completed` is false when the lease was lost part way (the rest waits for the next run)."""

    started_at: datetime
    tenants_checked: int
    dropped: list[str] = field(default_factory=lambda: [])
    """Partitions deleted, as `{tenant_id}/{partition}` (`YYYY-MM-DD` or `YYYY-MM@YYYY-MM`), tenant by tenant,
    oldest first."""
    failed_tenants: list[str] = field(default_factory=lambda: [])
    completed: bool = True


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RetentionJob(TenantSweep):
    """Enforces every tenant's retention on a schedule, on the one instance that holds the `retention` lease."""

    name = RETENTION_LEASE

    def __init__(
        self,
        *,
        metadata: MetadataStore,
        store: LogStore,
        settings: RetentionSettings,
        metrics: Metrics,
        clock: Callable[[], datetime] = _utcnow,
        holder: str | None = None,
        tenant_page_size: int = _TENANT_PAGE_SIZE,
    ) -> None:
        super().__init__(
            metadata=metadata,
            interval_seconds=settings.interval_seconds,
            lease_seconds=settings.lease_seconds,
            clock=clock,
            holder=holder,
            tenant_page_size=tenant_page_size,
        )
        self._store = store
        self._metrics = metrics

    async def run(self) -> RetentionRun | None:
        """One retention pass over every tenant; None when this instance does not hold the lease (or is stopping).

        A tenant whose partitions cannot be dropped is logged, counted and retried by the next run; the
        others go on. Raises `DatabaseUnavailable` when the lease or the tenant list cannot be read.
        """
        try:
            outcome = await self.sweep()
        except BaseException:
            self._metrics.retention_runs.labels("aborted").inc()
            raise
        if outcome is None:
            return None
        run = RetentionRun(
            outcome.started_at, outcome.tenants_checked, outcome.removed, outcome.failed_tenants, outcome.completed
        )
        self._metrics.retention_runs.labels("completed" if run.completed else "aborted").inc()
        logger.info(
            "retention run %s: %d partition(s) dropped, %d tenant(s) checked, %d failed",
            "completed" if run.completed else "cut short",
            len(run.dropped),
            run.tenants_checked,
            len(run.failed_tenants),
            extra={"partitions_dropped": len(run.dropped), "tenants_failed": len(run.failed_tenants)},
        )
        return run

    def lease_elsewhere(self) -> None:
        self._metrics.retention_runs.labels("skipped").inc()

    def tenant_failed(self, tenant: Tenant) -> None:
        self._metrics.retention_failures.inc()

    async def sweep_tenant(self, tenant: Tenant, now: datetime) -> list[str]:
        return await self._enforce(tenant, now)

    async def _enforce(self, tenant: Tenant, now: datetime) -> list[str]:
        oldest_kept = retention_cutoff(now, tenant.retention_days)
        basis = tenant.retention_basis
        dropped = await self._store.drop_partitions_before(tenant.id, oldest_kept, basis=basis)
        for partition in dropped:
            logger.info(
                "retention dropped partition %s (tenant %s keeps %d days by %s: %s and later)",
                partition,
                tenant.id,
                tenant.retention_days,
                basis,
                oldest_kept.isoformat(),
                extra={
                    "tenant_id": tenant.id,
                    "partition": partition,
                    "oldest_kept_day": oldest_kept.isoformat(),
                    "retention_basis": basis,
                },
            )
        self._metrics.retention_partitions_dropped.inc(len(dropped))
        return dropped
