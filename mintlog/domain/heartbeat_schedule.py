"""Heartbeat schedules for cron jobs and workers (Healthchecks' model). Pure code, no I/O.

A heartbeat expects pings. Its schedule says when the next one is due:

- `PeriodSchedule`: every `period_seconds` after the last ping (or after creation when it never pinged);
- `CronSchedule`: at the first fire time of `expression` in `time_zone` after the last ping (or creation), with the
  semantics of Debian cron as implemented by `cronsim` (what Healthchecks uses): a daily job at a wall time
  that does not exist on the spring-forward night runs when the clock jumps (02:30 Europe/Berlin → 03:00),
  a wall time that happens twice on the fall-back night fires once, at the first.

The heartbeat is late (down) at `deadline` = due time + `grace_seconds`; one that never pinged is "pending"
until its first deadline. A ping earlier than expected simply moves the next due time on from that ping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from cronsim import CronSim, CronSimError

__all__ = [
    "MAX_GRACE_SECONDS",
    "MAX_PERIOD_SECONDS",
    "MIN_PERIOD_SECONDS",
    "CronSchedule",
    "HeartbeatSchedule",
    "HeartbeatScheduleError",
    "PeriodSchedule",
    "PingKind",
    "deadline",
    "exit_status_ok",
    "next_deadline_after_miss",
    "run_duration",
    "validate_schedule",
]

MIN_PERIOD_SECONDS = 30
MAX_PERIOD_SECONDS = 365 * 86400
MAX_GRACE_SECONDS = 30 * 86400

PingKind = Literal["start", "success", "fail", "exit"]


class HeartbeatScheduleError(ValueError):
    """A heartbeat schedule that cannot be accepted; `field` names the offending field."""

    def __init__(self, *, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PeriodSchedule(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="period", tag_field="kind"
):
    """A ping is due every `period_seconds`; late after `grace_seconds` more."""

    period_seconds: int
    grace_seconds: int


class CronSchedule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="cron", tag_field="kind"):
    """A ping is due at each fire time of the five-field cron `expression` in `time_zone`."""

    expression: str
    time_zone: str = "UTC"
    grace_seconds: int


HeartbeatSchedule = PeriodSchedule | CronSchedule


def validate_schedule(schedule: HeartbeatSchedule, *, min_period_seconds: int = MIN_PERIOD_SECONDS) -> None:
    """Raise HeartbeatScheduleError naming the field when `schedule` is malformed; None when it is usable.

    `min_period_seconds` is the shortest period accepted (the operator's `MINTLOG_UPTIME__MIN_INTERVAL_SECONDS`
    for monitors)."""
    if not 0 <= schedule.grace_seconds <= MAX_GRACE_SECONDS:
        raise HeartbeatScheduleError(
            field="grace_seconds", message=f"must be between 0 and {MAX_GRACE_SECONDS} (30 days)"
        )
    if isinstance(schedule, PeriodSchedule):
        if not min_period_seconds <= schedule.period_seconds <= MAX_PERIOD_SECONDS:
            raise HeartbeatScheduleError(
                field="period_seconds",
                message=f"must be between {min_period_seconds} and {MAX_PERIOD_SECONDS} (365 days)",
            )
        return
    zone = _zone(schedule.time_zone)
    try:
        next(CronSim(schedule.expression, datetime.now(zone)))
    except (CronSimError, StopIteration) as error:
        raise HeartbeatScheduleError(field="expression", message=f"not a valid cron expression: {error}") from None


def deadline(schedule: HeartbeatSchedule, last_ping: datetime | None, created_at: datetime) -> datetime:
    """The UTC instant after which the heartbeat is late if no ping arrives.

    Counts from `last_ping`, or from `created_at` when it never pinged. The schedule must have passed
    `validate_schedule`. Raises ValueError for naive datetimes.
    """
    since = _aware_utc(last_ping if last_ping is not None else created_at)
    grace = timedelta(seconds=schedule.grace_seconds)
    if isinstance(schedule, PeriodSchedule):
        return since + timedelta(seconds=schedule.period_seconds) + grace
    fire_times = CronSim(schedule.expression, since.astimezone(ZoneInfo(schedule.time_zone)))
    # cronsim reads its start as wall time: from inside a repeated (fall-back) hour it can return the first
    # pass of that hour, which is before `since`. Debian cron fires once, at the first pass, so skip those.
    due = next(fire_times).astimezone(UTC)
    while due <= since:
        due = next(fire_times).astimezone(UTC)
    return due + grace


def next_deadline_after_miss(schedule: HeartbeatSchedule, missed: datetime, now: datetime) -> datetime:
    """The deadline that follows the missed deadline `missed`: the next expected run after the missed one, plus
    the grace. When that is past `now` too (the uptime role was away), it is counted from `now` instead: one
    late outcome for the outage, not one per run missed meanwhile. Always later than `missed` and than `now`."""
    grace = timedelta(seconds=schedule.grace_seconds)
    since = _aware_utc(missed) - grace
    following = deadline(schedule, since, since)
    if following > _aware_utc(now):
        return following
    since = _aware_utc(now) - grace
    return deadline(schedule, since, since)


def run_duration(start_ping: datetime | None, end_ping: datetime, max_run_seconds: int = 86400) -> float | None:
    """Seconds from the last `/start` ping to the success or fail ping that ends the run.

    None when there was no start, the start is later than the end, or it is more than `max_run_seconds`
    before the end (a start whose run never reported is not the start of this one).
    """
    if start_ping is None:
        return None
    seconds = (_aware_utc(end_ping) - _aware_utc(start_ping)).total_seconds()
    if seconds < 0 or seconds > max_run_seconds:
        return None
    return seconds


def exit_status_ok(code: int) -> bool:
    """True for exit status 0, False for 1-255; ValueError outside 0-255."""
    if not 0 <= code <= 255:
        raise ValueError(f"exit status must be between 0 and 255, got {code}")
    return code == 0


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HeartbeatScheduleError(field="time_zone", message=f"unknown IANA time zone {name!r}") from None


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)
