"""`MaintenanceWindowStore` and `BadgeStore`: maintenance windows and monitor badges in the metadata database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from mintlog.domain.maintenance_windows import StoredWindow

__all__ = ["BadgeStore", "MaintenanceWindowStore"]


class MaintenanceWindowStore(Protocol):
    """Maintenance windows of every tenant; another tenant's window is never returned nor changed."""

    async def create_window(self, window: StoredWindow, *, max_per_tenant: int) -> StoredWindow:
        """Store a new window; `Conflict` (`too_many_maintenance_windows`) when the tenant has `max_per_tenant`."""
        ...

    async def get_window(self, tenant_id: str, window_id: str) -> StoredWindow | None:
        """The tenant's window, or None."""
        ...

    async def list_windows(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[StoredWindow]:
        """The tenant's windows, oldest first, after the `(created_at, id)` cursor."""
        ...

    async def tenant_windows(self, tenant_id: str) -> Sequence[StoredWindow]:
        """Every window of the tenant (at most its limit), oldest first: what checks and alerts are matched on."""
        ...

    async def replace_window(self, window: StoredWindow) -> StoredWindow | None:
        """Replace the stored window of the same tenant and id (all but `created_at`); None when not found."""
        ...

    async def delete_window(self, tenant_id: str, window_id: str) -> bool:
        """Delete the window; False when not found."""
        ...


class BadgeStore(Protocol):
    """The badge tokens of monitors, kept as hashes: one badge per monitor."""

    async def set_badge(self, tenant_id: str, monitor_id: str, *, token_hash: str, created_at: datetime) -> None:
        """Make `token_hash` the monitor's badge, replacing (revoking) any earlier one. The caller checked that
        the monitor is the tenant's."""
        ...

    async def delete_badge(self, tenant_id: str, monitor_id: str) -> bool:
        """Revoke the monitor's badge; False when it had none."""
        ...

    async def badge_monitor(self, token_hash: str) -> tuple[str, str] | None:
        """The `(tenant_id, monitor_id)` whose badge has `token_hash`, or None."""
        ...
