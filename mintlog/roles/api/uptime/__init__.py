"""The uptime area of the API: monitors, their check results and SLA reports, maintenance windows and badges."""

from __future__ import annotations

from mintlog.roles.api.common.area import ApiArea
from mintlog.roles.api.uptime.badges import Badges, MonitorBadges
from mintlog.roles.api.uptime.maintenance_windows import MaintenanceWindows
from mintlog.roles.api.uptime.monitors import Monitors

__all__ = ["AREA"]

AREA = ApiArea("uptime", controllers=(Monitors, MonitorBadges, MaintenanceWindows, Badges))
