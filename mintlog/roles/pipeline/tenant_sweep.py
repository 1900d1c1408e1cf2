"""`TenantSweep`: a scheduled pass over every tenant, done by the one instance holding a lease.

Shared by retention (day partitions of the log store) and archive retention (archive objects). Guarantees:
- a pass runs at start (in the background) and then every interval; never two at once in one process;
- only the holder of the `JobLeases` lease named by the job sweeps; the lease is renewed after every page of
  tenants, and a pass that lost it stops there (`completed` false: the rest waits for the next pass);
- a tenant that fails is logged and retried by the next pass; the others go on;
- `stop` abandons a pass in progress and releases the lease, so another instance can take over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mintlog.domain.tenants import Tenant
from mintlog.errors import DependencyUnavailable
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.kit.base import Periodic, instance_holder

__all__ = ["SweepOutcome", "TenantSweep"]

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    """What one pass did: what it removed (tenant by tenant, oldest first) and which tenants failed."""

    started_at: datetime
    tenants_checked: int
    removed: list[str] = field(default_factory=lambda: [])
    failed_tenants: list[str] = field(default_factory=lambda: [])
    completed: bool = True


class TenantSweep(ABC):
    """The schedule, the lease and the paging over tenants; a subclass says what to do for one tenant."""

    name: str
    """The job's name, and the name of its lease."""

    def __init__(
        self,
        *,
        metadata: MetadataStore,
        interval_seconds: float,
        lease_seconds: float,
        clock: Callable[[], datetime] = _utcnow,
        holder: str | None = None,
        tenant_page_size: int = 100,
    ) -> None:
        self._metadata = metadata
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock
        self.holder = holder or instance_holder()
        self._tenant_page = tenant_page_size
        self._periodic = Periodic(self.name, interval_seconds, self.run)
        self._running = asyncio.Lock()
        self._stopping = False
        self._first_run: asyncio.Task[None] | None = None

    @abstractmethod
    async def sweep_tenant(self, tenant: Tenant, now: datetime) -> list[str]:
        """Remove what `tenant` no longer keeps at `now`; returns what was removed."""

    def tenant_failed(self, tenant: Tenant) -> None:  # noqa: B027 (an optional hook)
        """Called after a tenant's failure was logged (a subclass counts it)."""

    def lease_elsewhere(self) -> None:  # noqa: B027 (an optional hook)
        """Called when a pass is skipped because another instance holds the lease (a subclass counts it)."""

    @abstractmethod
    async def run(self) -> object:
        """One pass (a subclass wraps `sweep` with its own result and metrics)."""

    async def start(self) -> None:
        """Run once now, in the background, then every interval."""
        self._stopping = False
        self._first_run = asyncio.create_task(self._periodic.run_once(), name=f"{self.name}-first-run")
        await self._periodic.start()

    async def stop(self) -> None:
        """Stop scheduling, abandon a pass in progress and give the lease up so another instance can take it."""
        self._stopping = True
        if self._first_run is not None:
            self._first_run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._first_run
            self._first_run = None
        await self._periodic.stop()
        try:
            await self._metadata.release(self.name, self.holder)
        except DependencyUnavailable:
            logger.warning("could not release the %s lease; it expires by itself", self.name, exc_info=True)

    async def sweep(self) -> SweepOutcome | None:
        """One pass over every tenant; None when another instance holds the lease, or this one is stopping or
        already sweeping. Raises `DatabaseUnavailable` when the lease or the tenant list cannot be read."""
        if self._stopping or self._running.locked():
            return None
        async with self._running:
            started_at = self._clock()
            if not await self._claim(started_at):
                logger.debug("%s skipped: another instance holds the lease", self.name)
                self.lease_elsewhere()
                return None
            return await self._every_tenant(started_at)

    async def _claim(self, now: datetime) -> bool:
        return await self._metadata.try_claim(self.name, self.holder, until=now + self._lease, now=now)

    async def _every_tenant(self, now: datetime) -> SweepOutcome:
        removed: list[str] = []
        failed: list[str] = []
        checked = 0
        after: str | None = None
        while True:
            tenants = await self._metadata.list_tenants(after=after, limit=self._tenant_page)
            for tenant in tenants:
                checked += 1
                try:
                    removed.extend(await self.sweep_tenant(tenant, now))
                except Exception:
                    logger.exception("%s failed for tenant %s", self.name, tenant.id, extra={"tenant_id": tenant.id})
                    self.tenant_failed(tenant)
                    failed.append(tenant.id)
            if len(tenants) < self._tenant_page:
                return SweepOutcome(now, checked, removed, failed)
            after = tenants[-1].id
            if not await self._claim(self._clock()):
                logger.warning("%s lease lost to another instance after tenant %s; pass cut short", self.name, after)
                return SweepOutcome(now, checked, removed, failed, completed=False)
