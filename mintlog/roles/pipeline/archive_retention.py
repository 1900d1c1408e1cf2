"""Archive retention: each tenant's `archive_retention_days` enforced on the raw-event archive, one instance at a time.

Independent of the searchable retention (`retention_days`, `mintlog.roles.pipeline.retention`): a tenant may
search 30 days and keep its archive for 7 years. A tenant whose `archive_retention_days` is null uses
`MINTLOG_ARCHIVE__DEFAULT_RETENTION_DAYS`; 0 there keeps such tenants' archives forever.

Which objects go. With N days at instant `now`, the UTC day containing `now - N days` and every later day are
kept (`retention_cutoff`, the same rule as searchable retention); objects of earlier (receive) days are deleted.
Each object is deleted from the blob store first and its manifest row after, so a run cut short never leaves
a manifest row without its decision made: at worst a row whose object is already gone, which the next run
removes (a blob delete of a missing object succeeds).

Who runs it. Every pipeline instance schedules the job, but a run first claims the lease `archive-retention`
(`JobLeases.try_claim`) for twice the interval, renewing it before each page of tenants; the others skip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mintlog.domain.tenants import Tenant
from mintlog.metrics import Metrics
from mintlog.ports.archive import ArchiveManifest
from mintlog.ports.blobstore import BlobStore
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.pipeline.retention import retention_cutoff
from mintlog.roles.pipeline.tenant_sweep import TenantSweep
from mintlog.settings import ArchiveSettings

__all__ = ["ARCHIVE_RETENTION_LEASE", "ArchiveRetentionJob", "ArchiveRetentionRun"]

logger = logging.getLogger(__name__)

ARCHIVE_RETENTION_LEASE = "archive-retention"
"""The job name of the archive retention lease in `JobLeases`."""

_TENANT_PAGE_SIZE = 100
_OBJECT_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class ArchiveRetentionRun:
    """What one run did; `completed` is false when the lease was lost part way."""

    started_at: datetime
    tenants_checked: int
    deleted: list[str] = field(default_factory=lambda: [])
    """Keys of the objects deleted, tenant by tenant, oldest first."""
    failed_tenants: list[str] = field(default_factory=lambda: [])
    completed: bool = True


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ArchiveRetentionJob(TenantSweep):
    """Deletes archive objects past each tenant's archive retention, on the instance holding the lease."""

    name = ARCHIVE_RETENTION_LEASE

    def __init__(
        self,
        *,
        metadata: MetadataStore,
        manifest: ArchiveManifest,
        blobs: BlobStore,
        settings: ArchiveSettings,
        metrics: Metrics,
        clock: Callable[[], datetime] = _utcnow,
        holder: str | None = None,
        tenant_page_size: int = _TENANT_PAGE_SIZE,
        object_page_size: int = _OBJECT_PAGE_SIZE,
    ) -> None:
        super().__init__(
            metadata=metadata,
            interval_seconds=settings.retention_interval_seconds,
            lease_seconds=max(10.0, 2 * settings.retention_interval_seconds),
            clock=clock,
            holder=holder,
            tenant_page_size=tenant_page_size,
        )
        self._manifest = manifest
        self._blobs = blobs
        self._default_days = settings.default_retention_days
        self._metrics = metrics
        self._object_page = object_page_size

    def retention_days(self, tenant: Tenant) -> int | None:
        """The tenant's archive retention in days, None when its archive is kept forever."""
        days = tenant.archive_retention_days if tenant.archive_retention_days is not None else self._default_days
        return days if days >= 1 else None

    async def run(self) -> ArchiveRetentionRun | None:
        """One pass over every tenant; None when another instance holds the lease (or this one is stopping).

        A tenant whose objects cannot be deleted is logged and retried by the next run; the others go on.
        """
        outcome = await self.sweep()
        if outcome is None:
            return None
        run = ArchiveRetentionRun(
            outcome.started_at, outcome.tenants_checked, outcome.removed, outcome.failed_tenants, outcome.completed
        )
        logger.info(
            "archive retention run %s: %d object(s) deleted, %d tenant(s) checked, %d failed",
            "completed" if run.completed else "cut short",
            len(run.deleted),
            run.tenants_checked,
            len(run.failed_tenants),
        )
        return run

    async def sweep_tenant(self, tenant: Tenant, now: datetime) -> list[str]:
        return await self._enforce(tenant, now)

    async def _enforce(self, tenant: Tenant, now: datetime) -> list[str]:
        days = self.retention_days(tenant)
        if days is None:
            return []
        oldest_kept = retention_cutoff(now, days)
        deleted: list[str] = []
        while True:
            expired = await self._manifest.objects_before(tenant.id, oldest_kept, limit=self._object_page)
            if not expired:
                return deleted
            keys = [entry.key for entry in expired]
            for key in keys:
                await self._blobs.delete(key)
            await self._manifest.forget(tenant.id, keys)
            self._metrics.archive_objects_expired.inc(len(keys))
            deleted.extend(keys)
            logger.info(
                "archive retention deleted %d object(s) of tenant %s before %s",
                len(keys),
                tenant.id,
                oldest_kept.isoformat(),
                extra={"tenant_id": tenant.id, "oldest_kept_day": oldest_kept.isoformat()},
            )
