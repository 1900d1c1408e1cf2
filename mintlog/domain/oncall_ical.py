"""The iCalendar feed of a schedule: its final shifts as VEVENTs that calendar apps subscribe to.

Guarantees:
- one VEVENT per final shift, its `DTSTART`/`DTEND` in the schedule's time zone (`TZID=Europe/Berlin`) with
  the VTIMEZONE calendar apps need (written by `icalendar` from the zoneinfo data, not by hand);
- a shift keeps its `UID` from one fetch to the next (schedule, person and start instant), so a subscribed
  calendar updates it instead of duplicating it; a changed shift gets a new UID and the old one disappears;
- feed tokens are random, shown once, stored only as their SHA-256 (`ical_token_hash`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component, Event

from mintlog.domain.oncall_schedule import Shift

__all__ = ["ICAL_TOKEN_PREFIX", "calendar_feed", "ical_token_hash", "new_ical_token"]

ICAL_TOKEN_PREFIX = "mlcal_"  # noqa: S105 - the visible prefix of every token, not a secret
_PRODUCT = "-//Mintlog//On-call schedules//EN"


def _add(component: Component, name: str, value: object, parameters: dict[str, str] | None = None) -> None:
    """`Component.add`, whose value icalendar leaves untyped (it encodes datetimes, durations and text)."""
    component.add(name, value, parameters=parameters or {})  # pyright: ignore[reportUnknownMemberType]


def new_ical_token() -> str:
    """A new feed token (what the feed URL carries)."""
    return f"{ICAL_TOKEN_PREFIX}{secrets.token_urlsafe(32)}"


def ical_token_hash(token: str) -> str:
    """The SHA-256 hex digest stored for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def calendar_feed(
    *,
    schedule_id: str,
    schedule_name: str,
    time_zone: str,
    shifts: Sequence[Shift],
    names: Mapping[str, str],
    now: datetime,
) -> bytes:
    """The VCALENDAR of `shifts` (UTC), shown in `time_zone`; `names` maps person ids to display names."""
    zone = ZoneInfo(time_zone)
    calendar = Calendar()
    _add(calendar, "prodid", _PRODUCT)
    _add(calendar, "version", "2.0")
    _add(calendar, "calscale", "GREGORIAN")
    _add(calendar, "method", "PUBLISH")
    _add(calendar, "x-wr-calname", f"On call: {schedule_name}")
    _add(calendar, "x-wr-timezone", time_zone)
    _add(calendar, "refresh-interval", timedelta(hours=1), {"VALUE": "DURATION"})
    _add(calendar, "x-published-ttl", "PT1H")
    for shift in shifts:
        name = names.get(shift.person_id, shift.person_id)
        event = Event()
        _add(event, "uid", f"{schedule_id}-{shift.person_id}-{shift.start:%Y%m%dT%H%M%SZ}@mintlog")
        _add(event, "dtstamp", now)
        _add(event, "dtstart", shift.start.astimezone(zone))
        _add(event, "dtend", shift.end.astimezone(zone))
        _add(event, "summary", f"On call: {name}")
        _add(event, "description", f"{name} is on call for {schedule_name}.")
        _add(event, "transp", "TRANSPARENT")
        calendar.add_component(event)
    if shifts:
        calendar.add_missing_timezones(
            first_date=(shifts[0].start - timedelta(days=366)).date(),
            last_date=(shifts[-1].end + timedelta(days=366)).date(),
        )
    return calendar.to_ical()
