"""Which monitors are in a maintenance window when their check runs (`MaintenanceWindows` of the tenant).

The windows of a tenant are read once per check (at most `MINTLOG_UPTIME__MAX_MAINTENANCE_WINDOWS_PER_TENANT`
rows), so a window created, changed or deleted applies from the next check on. A store that cannot be read
raises `DependencyUnavailable`, like the rest of the check's database work.
"""

from __future__ import annotations

import logging
from datetime import datetime

from mintlog.domain.maintenance_windows import StoredWindow, window_for_monitor
from mintlog.domain.monitors import Monitor
from mintlog.ports.maintenance import MaintenanceWindowStore

__all__ = ["MaintenanceLookup"]

logger = logging.getLogger(__name__)


class MaintenanceLookup:
    """Answers whether a monitor is covered by one of its tenant's maintenance windows at an instant."""

    def __init__(self, windows: MaintenanceWindowStore) -> None:
        self._windows = windows

    async def window_for(self, monitor: Monitor, at: datetime) -> StoredWindow | None:
        """The first window (oldest first) covering `monitor` and active at `at`, or None."""
        found = window_for_monitor(await self._windows.tenant_windows(monitor.tenant_id), monitor, at)
        if found is not None:
            logger.debug("monitor %s is in maintenance window %s", monitor.id, found.id)
        return found
