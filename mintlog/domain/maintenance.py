"""Maintenance windows of uptime monitors: one-off or recurring (RFC 5545 RRULE). Pure code, no I/O.

A window starts at `starts_at`, read as a wall-clock time in `time_zone` (a naive value is that wall time; an
aware one is converted to it), and lasts `duration_seconds` of real elapsed time. With an `rrule` it recurs on
the *wall clock* of its zone: "FREQ=WEEKLY;BYDAY=SU" at 02:00 Europe/Berlin is 02:00 local in winter and in
summer. Daylight saving time, like Debian cron:

- a start that does not exist (02:30 on the spring-forward night) begins when the clock jumps (03:00);
- a start that happens twice (02:30 on the fall-back night) begins at the first of the two (fold=0).

`until` (same reading as `starts_at`) ends the recurrence: no occurrence starts after it. A window is active
on `[start, start + duration)`. `validate_window` refuses rules recurring more often than every 5 minutes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from dateutil.rrule import rrule, rrulestr

__all__ = [
    "MAX_DURATION_SECONDS",
    "MIN_RECURRENCE_SECONDS",
    "MaintenanceError",
    "MaintenanceWindow",
    "active_at",
    "in_any_window",
    "occurrences",
    "validate_window",
]

MAX_DURATION_SECONDS = 31 * 86400
MIN_RECURRENCE_SECONDS = 300
_RECURRENCE_SAMPLE = 2000
_CYCLE = {"HOURLY": timedelta(hours=1), "DAILY": timedelta(days=1), "WEEKLY": timedelta(weeks=1)}
_REFUSED_PARTS = {"DTSTART": "give the start in starts_at", "UNTIL": "give the end of the recurrence in until"}


class MaintenanceError(ValueError):
    """A maintenance window that cannot be accepted; `field` names the offending field."""

    def __init__(self, *, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class MaintenanceWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One maintenance window; see the module docstring for how times are read."""

    starts_at: datetime
    duration_seconds: int
    rrule: str | None = None
    time_zone: str = "UTC"
    until: datetime | None = None


def validate_window(window: MaintenanceWindow) -> None:
    """Raise MaintenanceError naming the field when `window` is malformed; return None when it is usable."""
    zone = _zone(window.time_zone)
    if not 1 <= window.duration_seconds <= MAX_DURATION_SECONDS:
        raise MaintenanceError(
            field="duration_seconds", message=f"must be between 1 and {MAX_DURATION_SECONDS} (31 days)"
        )
    first = _wall(window.starts_at, zone)
    if window.until is not None:
        if window.rrule is None:
            raise MaintenanceError(field="until", message="only a recurring window (with rrule) has an until")
        if _wall(window.until, zone) < first:
            raise MaintenanceError(field="until", message="must not be before starts_at")
    if window.rrule is None:
        return
    rule = _rule(window, zone)
    try:
        starts = list(itertools.islice(rule, _RECURRENCE_SAMPLE))
    except (ValueError, OverflowError) as error:
        raise MaintenanceError(field="rrule", message=f"cannot be evaluated: {error}") from None
    if not starts:
        raise MaintenanceError(field="rrule", message="never occurs")
    # Measured on the wall clock: the rule's own rhythm, not the hour a DST change adds or removes.
    for earlier, later in itertools.pairwise(starts):
        if (later - earlier).total_seconds() < MIN_RECURRENCE_SECONDS:
            raise MaintenanceError(
                field="rrule", message=f"recurs more often than every {MIN_RECURRENCE_SECONDS // 60} minutes"
            )


def occurrences(window: MaintenanceWindow, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC intervals `[begin, end)` of `window` that overlap `[start, end)`, in order.

    The window must have passed `validate_window`. Raises ValueError for naive bounds.
    """
    start, end = _aware_utc(start, "start"), _aware_utc(end, "end")
    if end <= start:
        return []
    zone = ZoneInfo(window.time_zone)
    duration = timedelta(seconds=window.duration_seconds)
    if window.rrule is None:
        candidates: Iterable[datetime] = [_wall(window.starts_at, zone)]
    else:
        # A day of slack either side covers any UTC offset; the exact filter is done in UTC below.
        margin = timedelta(days=1)
        low = (start - duration).astimezone(zone).replace(tzinfo=None) - margin
        high = end.astimezone(zone).replace(tzinfo=None) + margin
        candidates = _fast_forward(_rule(window, zone), window, low).between(low, high, inc=True)
    intervals: list[tuple[datetime, datetime]] = []
    for wall in candidates:
        begin = _utc(wall, zone)
        # Two wall times inside one DST gap both start at the jump: one occurrence.
        if intervals and intervals[-1][0] == begin:
            continue
        if begin < end and begin + duration > start:
            intervals.append((begin, begin + duration))
    return intervals


def active_at(window: MaintenanceWindow, at: datetime) -> bool:
    """True when an occurrence of `window` covers the instant `at` (start inclusive, end exclusive)."""
    return bool(occurrences(window, at, at + timedelta(microseconds=1)))


def in_any_window(windows: Iterable[MaintenanceWindow], at: datetime) -> bool:
    """True when any of `windows` is active at `at`."""
    return any(active_at(window, at) for window in windows)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MaintenanceError(field="time_zone", message=f"unknown IANA time zone {name!r}") from None


def _wall(value: datetime, zone: tzinfo) -> datetime:
    """The naive wall-clock time of `value` in `zone` (a naive value already is one)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(zone).replace(tzinfo=None)


def _aware_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall time: the first of two on a fall-back, the clock jump in a gap."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)
    # In a gap fold=1 maps before the jump and fold=0 after it: bisect the whole UTC second of the jump.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(first.timestamp())
    after_offset = first.astimezone(UTC).astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _rule(window: MaintenanceWindow, zone: ZoneInfo) -> rrule:
    text = (window.rrule or "").strip()
    parts = _rule_parts(text)
    for part, hint in _REFUSED_PARTS.items():
        if part in parts:
            raise MaintenanceError(field="rrule", message=f"{part} is not allowed here: {hint}")
    if parts.get("FREQ") in ("SECONDLY", "MINUTELY"):
        raise MaintenanceError(
            field="rrule", message=f"recurs more often than every {MIN_RECURRENCE_SECONDS // 60} minutes"
        )
    for part in ("COUNT", "INTERVAL"):
        if part in parts and not (parts[part].isdigit() and int(parts[part]) >= 1):
            raise MaintenanceError(field="rrule", message=f"{part} must be a whole number of at least 1")
    if window.until is not None and "COUNT" in parts:
        raise MaintenanceError(field="until", message="a rule with COUNT cannot also have an until")
    try:
        parsed = rrulestr(text, dtstart=_wall(window.starts_at, zone))
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise MaintenanceError(field="rrule", message=f"not a valid RFC 5545 RRULE: {error}") from None
    if not isinstance(parsed, rrule):
        raise MaintenanceError(field="rrule", message="must be a single RRULE")
    if window.until is not None:
        parsed = parsed.replace(until=_wall(window.until, zone))
    return parsed


def _fast_forward(rule: rrule, window: MaintenanceWindow, low: datetime) -> rrule:
    """`rule` starting at its last whole cycle before `low`, the same occurrences from there on.

    dateutil walks every occurrence from DTSTART; an hourly window created a year ago would cost 9,000 steps
    per question. Shifting the naive wall-clock DTSTART by whole cycles (INTERVAL x hour/day/week) keeps its
    time of day, weekday and phase, so the rule yields the same occurrences after the new start. A rule with
    COUNT cannot be shifted (the count would restart); MONTHLY and YEARLY are cheap to walk anyway.
    """
    parts = _rule_parts(window.rrule or "")
    unit = _CYCLE.get(parts.get("FREQ", ""))
    first = _wall(window.starts_at, ZoneInfo(window.time_zone))
    if unit is None or "COUNT" in parts or low <= first:
        return rule
    cycle = unit * int(parts.get("INTERVAL", "1"))
    return rule.replace(dtstart=first + cycle * ((low - first) // cycle))


def _rule_parts(text: str) -> dict[str, str]:
    """The NAME=value parts of one RRULE (an optional "RRULE:" prefix allowed), names upper-cased."""
    body = text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text
    if not body or "\n" in body:
        raise MaintenanceError(field="rrule", message="must be a single RRULE such as FREQ=WEEKLY;BYDAY=SU")
    parts: dict[str, str] = {}
    for item in body.split(";"):
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            raise MaintenanceError(field="rrule", message=f"malformed part {item!r}: expected NAME=value")
        parts[name.strip().upper()] = value.strip().upper()
    return parts
