"""The on-call area of the API: people, schedules (with overrides, shifts and who is on call) and calendar
feeds. docs/oncall.md is the reference."""

from __future__ import annotations

from mintlog.roles.api.common.area import ApiArea
from mintlog.roles.api.oncall.feed import CalendarFeed
from mintlog.roles.api.oncall.overrides import Overrides
from mintlog.roles.api.oncall.people import People
from mintlog.roles.api.oncall.schedules import Schedules

__all__ = ["AREA"]

AREA = ApiArea("oncall", controllers=(People, Schedules, Overrides, CalendarFeed))
"""Routes under `/v1/oncall/people`, `/v1/oncall/schedules[/{id}/overrides]` (scopes `oncall:read`,
`oncall:write`) and the public `/v1/oncall/ical/{token}.ics`."""
