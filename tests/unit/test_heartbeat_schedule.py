"""Heartbeat schedules: when a heartbeat is late, run durations, exit codes and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from mintlog.domain.heartbeat_schedule import (
    CronSchedule,
    HeartbeatSchedule,
    HeartbeatScheduleError,
    PeriodSchedule,
    deadline,
    exit_status_ok,
    run_duration,
    validate_schedule,
)

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # pyright: ignore[reportArgumentType]


def test_a_period_heartbeat_is_late_one_period_and_the_grace_after_its_last_ping() -> None:
    schedule = PeriodSchedule(period_seconds=3600, grace_seconds=300)
    validate_schedule(schedule)
    assert deadline(schedule, utc(2026, 2, 1, 10, 0), CREATED) == utc(2026, 2, 1, 11, 5)


def test_a_heartbeat_that_never_pinged_counts_from_its_creation() -> None:
    schedule = PeriodSchedule(period_seconds=60, grace_seconds=0)
    assert deadline(schedule, None, CREATED) == utc(2026, 1, 1, 0, 1)


def test_a_daily_berlin_cron_at_0300_fires_23_hours_later_across_the_spring_forward_night() -> None:
    schedule = CronSchedule(expression="0 3 * * *", time_zone="Europe/Berlin", grace_seconds=3600)
    validate_schedule(schedule)
    # Pinged at 03:00:05 CET on Saturday; Sunday's 03:00 is CEST (01:00 UTC), plus one hour of grace.
    assert deadline(schedule, utc(2026, 3, 28, 2, 0, 5), CREATED) == utc(2026, 3, 29, 2, 0)


def test_a_cron_time_that_does_not_exist_fires_when_the_clock_jumps() -> None:
    schedule = CronSchedule(expression="30 2 * * *", time_zone="Europe/Berlin", grace_seconds=0)
    # 02:30 does not exist on 2026-03-29: Debian cron (and cronsim) run the job at 03:00 CEST = 01:00 UTC.
    assert deadline(schedule, utc(2026, 3, 28, 1, 30), CREATED) == utc(2026, 3, 29, 1, 0)
    # The next day is normal again: 02:30 CEST.
    assert deadline(schedule, utc(2026, 3, 29, 1, 0), CREATED) == utc(2026, 3, 30, 0, 30)


def test_a_cron_time_that_happens_twice_fires_once_at_the_first() -> None:
    schedule = CronSchedule(expression="30 2 * * *", time_zone="Europe/Berlin", grace_seconds=0)
    assert deadline(schedule, utc(2026, 10, 24, 12), CREATED) == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    # Pinged at 02:35 CEST, and again at 02:15 CET during the repeated hour: the next run is Monday 02:30 CET.
    assert deadline(schedule, utc(2026, 10, 25, 0, 35), CREATED) == utc(2026, 10, 26, 1, 30)
    assert deadline(schedule, utc(2026, 10, 25, 1, 15), CREATED) == utc(2026, 10, 26, 1, 30)


def test_a_weekly_new_york_cron_follows_local_time_across_dst() -> None:
    schedule = CronSchedule(expression="0 9 * * 1", time_zone="America/New_York", grace_seconds=600)
    # Monday 2026-03-02 09:00 EST pinged; next Monday 03-09 09:00 is EDT (13:00 UTC), plus 10 minutes.
    assert deadline(schedule, utc(2026, 3, 2, 14, 0, 30), CREATED) == utc(2026, 3, 9, 13, 10)
    # After the fall-back, 09:00 EST is 14:00 UTC again.
    assert deadline(schedule, utc(2026, 10, 26, 13, 1), CREATED) == utc(2026, 11, 2, 14, 10)


def test_a_ping_before_the_expected_time_counts_for_that_run() -> None:
    schedule = CronSchedule(expression="0 3 * * *", grace_seconds=300)
    # The 03:00 job pinged at 02:58: the next due run is today's 03:00, not tomorrow's.
    assert deadline(schedule, utc(2026, 5, 5, 2, 58), CREATED) == utc(2026, 5, 5, 3, 5)
    # A ping exactly at a fire time is that run: the next one is tomorrow.
    assert deadline(schedule, utc(2026, 5, 5, 3, 0), CREATED) == utc(2026, 5, 6, 3, 5)


def test_a_cron_heartbeat_that_never_pinged_is_due_at_the_first_fire_after_creation() -> None:
    schedule = CronSchedule(expression="*/15 * * * *", grace_seconds=60)
    assert deadline(schedule, None, utc(2026, 1, 1, 10, 7)) == utc(2026, 1, 1, 10, 16)


def test_naive_pings_are_refused() -> None:
    with pytest.raises(ValueError):
        deadline(PeriodSchedule(period_seconds=60, grace_seconds=0), datetime(2026, 1, 1), CREATED)


def test_schedules_decode_from_json_by_kind() -> None:
    decoder = msgspec.json.Decoder(HeartbeatSchedule)
    assert decoder.decode(b'{"kind": "period", "period_seconds": 86400, "grace_seconds": 3600}') == PeriodSchedule(
        period_seconds=86400, grace_seconds=3600
    )
    cron = decoder.decode(
        b'{"kind": "cron", "expression": "0 3 * * *", "time_zone": "Europe/Berlin", "grace_seconds": 0}'
    )
    assert cron == CronSchedule(expression="0 3 * * *", time_zone="Europe/Berlin", grace_seconds=0)
    assert msgspec.json.decode(msgspec.json.encode(cron))["kind"] == "cron"
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(b'{"kind": "hourly", "grace_seconds": 0}')
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(b'{"kind": "period", "period_seconds": 60, "grace_seconds": 0, "timezone": "UTC"}')


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (PeriodSchedule(period_seconds=29, grace_seconds=0), "period_seconds"),
        (PeriodSchedule(period_seconds=365 * 86400 + 1, grace_seconds=0), "period_seconds"),
        (PeriodSchedule(period_seconds=60, grace_seconds=-1), "grace_seconds"),
        (PeriodSchedule(period_seconds=60, grace_seconds=30 * 86400 + 1), "grace_seconds"),
        (CronSchedule(expression="0 3 * * *", grace_seconds=-5), "grace_seconds"),
        (CronSchedule(expression="0 3 * * *", time_zone="Europe/Atlantis", grace_seconds=0), "time_zone"),
        (CronSchedule(expression="0 3 * *", grace_seconds=0), "expression"),
        (CronSchedule(expression="61 * * * *", grace_seconds=0), "expression"),
        (CronSchedule(expression="0 25 * * *", grace_seconds=0), "expression"),
        (CronSchedule(expression="0 0 31 2 *", grace_seconds=0), "expression"),
        (CronSchedule(expression="every day", grace_seconds=0), "expression"),
        (CronSchedule(expression="", grace_seconds=0), "expression"),
    ],
)
def test_malformed_schedules_are_refused_naming_the_field(schedule: HeartbeatSchedule, field: str) -> None:
    with pytest.raises(HeartbeatScheduleError) as caught:
        validate_schedule(schedule)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "schedule",
    [
        PeriodSchedule(period_seconds=30, grace_seconds=0),
        PeriodSchedule(period_seconds=365 * 86400, grace_seconds=30 * 86400),
        CronSchedule(expression="*/5 * * * 1-5", time_zone="America/New_York", grace_seconds=60),
        CronSchedule(expression="0 0 L * *", grace_seconds=0),
    ],
)
def test_bounds_and_usual_cron_expressions_are_accepted(schedule: HeartbeatSchedule) -> None:
    validate_schedule(schedule)


def test_run_duration_is_measured_from_the_last_start() -> None:
    end = utc(2026, 4, 1, 12)
    assert run_duration(end - timedelta(seconds=95.5), end) == 95.5
    assert run_duration(end, end) == 0.0
    assert run_duration(None, end) is None
    assert run_duration(end + timedelta(seconds=1), end) is None
    assert run_duration(end - timedelta(days=1), end) == 86400
    assert run_duration(end - timedelta(days=1, seconds=1), end) is None
    assert run_duration(end - timedelta(minutes=10), end, max_run_seconds=300) is None


def test_exit_status_zero_is_success_and_anything_else_a_failure() -> None:
    assert exit_status_ok(0)
    assert not exit_status_ok(1)
    assert not exit_status_ok(255)
    with pytest.raises(ValueError):
        exit_status_ok(256)
    with pytest.raises(ValueError):
        exit_status_ok(-1)
