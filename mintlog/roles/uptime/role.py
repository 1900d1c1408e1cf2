"""The uptime role: runs every unpaused monitor's check on its interval, once per interval across instances,
keeps each monitor's confirmed state, and publishes results, state changes and incidents. Heartbeat monitors
are not probed: their pings arrive over the bus (`pings`) and their missed deadlines are claimed like checks.

How a check is claimed is in `due`, what one check does in `checker`, what it publishes in `events`, how the
alert outbox reaches the bus in `outbox`; pings and deadlines of heartbeats are in `heartbeats`; the user-facing
reference is docs/uptime.md. Old results are pruned every hour (`result_retention_days`); the alert outbox is
swept every `outbox_interval_seconds`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from mintlog.roles.kit.base import Periodic
from mintlog.roles.kit.scheduler import DueWorkScheduler
from mintlog.roles.uptime.checker import CheckProber, MonitorChecker
from mintlog.roles.uptime.due import DueMonitors
from mintlog.roles.uptime.heartbeats import HeartbeatRecorder
from mintlog.roles.uptime.maintenance import MaintenanceLookup
from mintlog.roles.uptime.outbox import AlertRelay
from mintlog.roles.uptime.pings import PingConsumer
from mintlog.runtime import Runtime

__all__ = ["UptimeRole"]

logger = logging.getLogger(__name__)

_DUE_MONITORS_PER_POLL = 500
_PRUNE_INTERVAL_SECONDS = 3600.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class UptimeRole:
    """Claims due monitors and runs their checks, `max_concurrent_checks` at a time."""

    name = "uptime"

    def __init__(
        self,
        runtime: Runtime,
        *,
        prober: CheckProber,
        close_prober: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        settings = runtime.settings.uptime
        self._close_prober = close_prober
        self._monitors = runtime.monitors
        self._clock = clock
        self._retention = timedelta(days=settings.result_retention_days)
        self.relay = AlertRelay(monitors=runtime.monitors, bus=runtime.bus)
        maintenance = MaintenanceLookup(runtime.maintenance_windows)
        self.checker = MonitorChecker(
            monitors=runtime.monitors,
            bus=runtime.bus,
            prober=prober,
            maintenance=maintenance,
            location=settings.location,
            clock=clock,
            relay=self.relay,
            store=runtime.store,
            log_summary_timeout_seconds=settings.log_summary_timeout_seconds,
        )
        self.heartbeats = HeartbeatRecorder(
            monitors=runtime.monitors,
            bus=runtime.bus,
            relay=self.relay,
            maintenance=maintenance,
            location=settings.location,
            clock=clock,
        )
        self.pings = PingConsumer(bus=runtime.bus, recorder=self.heartbeats, metrics=runtime.metrics)
        self.scheduler = DueWorkScheduler(
            DueMonitors(runtime.monitors, self.checker, self.heartbeats, location=settings.location),
            work="uptime-checks",
            max_running=settings.max_concurrent_checks,
            max_claimed=max(_DUE_MONITORS_PER_POLL, settings.max_concurrent_checks),
            poll_seconds=settings.poll_seconds,
            run_timeout_seconds=None,
            metrics=runtime.metrics,
            clock=clock,
        )
        self._pruning = Periodic("uptime-results-prune", _PRUNE_INTERVAL_SECONDS, self.prune_results)
        self._relaying = Periodic("uptime-alert-outbox", settings.outbox_interval_seconds, self.relay.sweep)

    async def prune_results(self) -> int:
        """Delete results older than the retention (a bounded batch); returns how many."""
        return await self._monitors.prune_results(self._clock() - self._retention)

    async def start(self) -> None:
        await self.pings.start()
        await self.scheduler.start()
        await self._pruning.start()
        await self._relaying.start()
        logger.info("uptime role started")

    async def stop(self) -> None:
        await self.scheduler.stop(grace_seconds=10.0)
        await self.pings.stop()
        await self._pruning.stop()
        await self._relaying.stop()
        if self._close_prober is not None:
            await self._close_prober()
        logger.info("uptime role stopped")
