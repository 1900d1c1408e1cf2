"""The uptime area of the API: monitors, their check results and SLA reports."""

from __future__ import annotations

from mintlog.roles.api.common.area import ApiArea
from mintlog.roles.api.uptime.monitors import Monitors

__all__ = ["AREA"]

AREA = ApiArea("uptime", controllers=(Monitors,))
