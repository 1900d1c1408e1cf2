"""Maintenance windows: one-off and recurring, wall-clock recurrence across DST, and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from mintlog.domain.maintenance import (
    MaintenanceError,
    MaintenanceWindow,
    active_at,
    in_any_window,
    occurrences,
    validate_window,
)

SUNDAY_0230_BERLIN = MaintenanceWindow(
    starts_at=datetime(2026, 3, 1, 2, 30),
    duration_seconds=3600,
    rrule="FREQ=WEEKLY;BYDAY=SU",
    time_zone="Europe/Berlin",
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # pyright: ignore[reportArgumentType]


def test_a_one_off_window_is_active_from_its_start_until_its_end_exclusive() -> None:
    window = MaintenanceWindow(starts_at=utc(2026, 5, 1, 22), duration_seconds=2 * 3600)
    validate_window(window)
    assert not active_at(window, utc(2026, 5, 1, 21, 59, 59))
    assert active_at(window, utc(2026, 5, 1, 22))
    assert active_at(window, utc(2026, 5, 1, 23, 59, 59))
    assert not active_at(window, utc(2026, 5, 2, 0))
    assert occurrences(window, utc(2026, 5, 1), utc(2026, 5, 3)) == [(utc(2026, 5, 1, 22), utc(2026, 5, 2, 0))]
    assert occurrences(window, utc(2026, 5, 2), utc(2026, 5, 3)) == []


def test_a_naive_start_is_wall_time_in_the_zone_and_an_aware_one_is_an_instant() -> None:
    naive = MaintenanceWindow(starts_at=datetime(2026, 7, 1, 2), duration_seconds=60, time_zone="America/New_York")
    aware = MaintenanceWindow(starts_at=utc(2026, 7, 1, 6), duration_seconds=60, time_zone="America/New_York")
    # 02:00 EDT is 06:00 UTC.
    assert occurrences(naive, utc(2026, 7, 1), utc(2026, 7, 2)) == [(utc(2026, 7, 1, 6), utc(2026, 7, 1, 6, 1))]
    assert occurrences(aware, utc(2026, 7, 1), utc(2026, 7, 2)) == occurrences(naive, utc(2026, 7, 1), utc(2026, 7, 2))


def test_a_weekly_berlin_window_keeps_its_wall_time_in_winter_and_summer() -> None:
    validate_window(SUNDAY_0230_BERLIN)
    found = occurrences(SUNDAY_0230_BERLIN, utc(2026, 3, 20), utc(2026, 4, 6))
    assert found == [
        (utc(2026, 3, 22, 1, 30), utc(2026, 3, 22, 2, 30)),  # 02:30 CET
        (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)),  # 02:30 does not exist: starts at the jump, 03:00 CEST
        (utc(2026, 4, 5, 0, 30), utc(2026, 4, 5, 1, 30)),  # 02:30 CEST
    ]


def test_on_the_fall_back_night_the_window_starts_at_the_first_0230_and_lasts_real_time() -> None:
    found = occurrences(SUNDAY_0230_BERLIN, utc(2026, 10, 24), utc(2026, 11, 2))
    assert found == [
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)),  # the first 02:30 (CEST), once
        (utc(2026, 11, 1, 1, 30), utc(2026, 11, 1, 2, 30)),  # 02:30 CET
    ]
    assert active_at(SUNDAY_0230_BERLIN, utc(2026, 10, 25, 1, 29, 59))
    # The second 02:30 (01:30 UTC) is an hour after the start: the one-hour window is over.
    assert not active_at(SUNDAY_0230_BERLIN, utc(2026, 10, 25, 1, 30))


def test_a_daily_new_york_window_follows_the_clock_across_both_dst_changes() -> None:
    window = MaintenanceWindow(
        starts_at=datetime(2026, 1, 1, 9), duration_seconds=900, rrule="FREQ=DAILY", time_zone="America/New_York"
    )
    validate_window(window)
    spring = occurrences(window, utc(2026, 3, 7), utc(2026, 3, 10))
    assert [begin for begin, _ in spring] == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]
    fall = occurrences(window, utc(2026, 10, 31), utc(2026, 11, 3))
    assert [begin for begin, _ in fall] == [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14)]


def test_new_york_0230_on_the_spring_forward_day_starts_at_0300_edt() -> None:
    window = MaintenanceWindow(
        starts_at=datetime(2026, 3, 1, 2, 30), duration_seconds=1800, rrule="FREQ=DAILY", time_zone="America/New_York"
    )
    assert occurrences(window, utc(2026, 3, 8), utc(2026, 3, 9)) == [(utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30))]


def test_an_occurrence_that_began_before_the_query_is_returned_and_active() -> None:
    window = MaintenanceWindow(starts_at=datetime(2026, 1, 1, 23), duration_seconds=4 * 3600, rrule="FREQ=DAILY")
    assert occurrences(window, utc(2026, 2, 2, 1), utc(2026, 2, 2, 2)) == [(utc(2026, 2, 1, 23), utc(2026, 2, 2, 3))]
    assert active_at(window, utc(2026, 2, 2, 2, 59))
    assert not active_at(window, utc(2026, 2, 2, 3))


def test_no_occurrence_before_the_first_start_after_until_or_beyond_count() -> None:
    until = MaintenanceWindow(
        starts_at=datetime(2026, 1, 5, 1), duration_seconds=60, rrule="FREQ=WEEKLY", until=datetime(2026, 1, 19, 1)
    )
    validate_window(until)
    begins = [begin for begin, _ in occurrences(until, utc(2025, 12, 1), utc(2026, 3, 1))]
    assert begins == [utc(2026, 1, 5, 1), utc(2026, 1, 12, 1), utc(2026, 1, 19, 1)]
    counted = MaintenanceWindow(
        starts_at=datetime(2026, 1, 5, 1), duration_seconds=60, rrule="RRULE:FREQ=DAILY;COUNT=2"
    )
    validate_window(counted)
    assert len(occurrences(counted, utc(2026, 1, 1), utc(2026, 2, 1))) == 2


def test_in_any_window() -> None:
    nightly = MaintenanceWindow(starts_at=datetime(2026, 1, 1, 3), duration_seconds=600, rrule="FREQ=DAILY")
    once = MaintenanceWindow(starts_at=utc(2026, 6, 1, 12), duration_seconds=60)
    assert in_any_window([nightly, once], utc(2026, 6, 1, 3, 5))
    assert in_any_window([nightly, once], utc(2026, 6, 1, 12, 0, 30))
    assert not in_any_window([nightly, once], utc(2026, 6, 1, 12, 1))
    assert not in_any_window([], utc(2026, 6, 1, 3, 5))


def test_naive_query_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        active_at(SUNDAY_0230_BERLIN, datetime(2026, 3, 1, 2, 45))


def test_a_window_decodes_from_json_and_refuses_unknown_fields() -> None:
    body = b'{"starts_at": "2026-03-01T02:30:00", "duration_seconds": 3600, "rrule": "FREQ=WEEKLY;BYDAY=SU",'
    window = msgspec.json.decode(body + b' "time_zone": "Europe/Berlin"}', type=MaintenanceWindow)
    assert window == SUNDAY_0230_BERLIN
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body + b' "timezone": "Europe/Berlin"}', type=MaintenanceWindow)


START = datetime(2026, 1, 1, 2)


@pytest.mark.parametrize(
    ("window", "field"),
    [
        (MaintenanceWindow(starts_at=START, duration_seconds=0), "duration_seconds"),
        (MaintenanceWindow(starts_at=START, duration_seconds=31 * 86400 + 1), "duration_seconds"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, time_zone="Mars/Olympus"), "time_zone"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, time_zone=""), "time_zone"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=FORTNIGHTLY"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="BYDAY=SU"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=WEEKLY;BYDAY=XX"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="weekly on sunday"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule=""), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=MINUTELY;INTERVAL=10"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=SECONDLY"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=HOURLY;BYMINUTE=0,1,2"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=DAILY;COUNT=0"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=DAILY;COUNT=-3"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=DAILY;INTERVAL=0"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=DAILY;UNTIL=20260201T000000Z"), "rrule"),
        (
            MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="DTSTART:20260101T000000\nRRULE:FREQ=DAILY"),
            "rrule",
        ),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"), "rrule"),
        (MaintenanceWindow(starts_at=START, duration_seconds=60, until=datetime(2026, 2, 1)), "until"),
        (
            MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=DAILY", until=datetime(2025, 12, 1)),
            "until",
        ),
        (
            MaintenanceWindow(
                starts_at=START, duration_seconds=60, rrule="FREQ=DAILY;COUNT=3", until=datetime(2026, 2, 1)
            ),
            "until",
        ),
    ],
)
def test_malformed_windows_are_refused_naming_the_field(window: MaintenanceWindow, field: str) -> None:
    with pytest.raises(MaintenanceError) as caught:
        validate_window(window)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY;BYMINUTE=0,30",
        "FREQ=HOURLY;INTERVAL=1",
        "FREQ=MONTHLY;BYDAY=1SA",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    ],
)
def test_reasonable_rules_are_accepted(rule: str) -> None:
    validate_window(MaintenanceWindow(starts_at=START, duration_seconds=60, rrule=rule, time_zone="Europe/Berlin"))


def test_an_hourly_window_has_one_occurrence_per_real_hour_across_the_berlin_spring_forward() -> None:
    hourly = MaintenanceWindow(
        starts_at=datetime(2026, 3, 1), duration_seconds=600, rrule="FREQ=HOURLY", time_zone="Europe/Berlin"
    )
    validate_window(hourly)
    # 01:00 CET, then 02:00 (which does not exist) and 03:00 CEST both start at the jump (01:00 UTC).
    begins = [begin for begin, _ in occurrences(hourly, utc(2026, 3, 29, 0), utc(2026, 3, 29, 2, 30))]
    assert begins == [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)]


def test_a_rule_every_five_minutes_is_the_fastest_accepted() -> None:
    every_five = MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=HOURLY;BYMINUTE=0,5,10,15")
    validate_window(every_five)
    assert len(occurrences(every_five, utc(2026, 1, 1, 2), utc(2026, 1, 1, 3))) == 4
    every_four = MaintenanceWindow(starts_at=START, duration_seconds=60, rrule="FREQ=HOURLY;BYMINUTE=0,4")
    with pytest.raises(MaintenanceError):
        validate_window(every_four)


def test_a_rule_created_long_ago_keeps_its_rhythm_and_its_count() -> None:
    # Every other Sunday from 2025-01-05: 2026-11-22 is 49 fortnights later, 2026-11-29 falls in between.
    fortnightly = MaintenanceWindow(
        starts_at=datetime(2025, 1, 5, 2), duration_seconds=3600, rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=SU"
    )
    begins = [begin for begin, _ in occurrences(fortnightly, utc(2026, 11, 20), utc(2026, 12, 31))]
    assert begins == [utc(2026, 11, 22, 2), utc(2026, 12, 6, 2), utc(2026, 12, 20, 2)]
    every_third_day = MaintenanceWindow(
        starts_at=datetime(2025, 1, 1, 4), duration_seconds=60, rrule="FREQ=DAILY;INTERVAL=3"
    )
    # 2026-12-04 is 702 = 3 x 234 days after 2025-01-01.
    assert [b for b, _ in occurrences(every_third_day, utc(2026, 12, 2), utc(2026, 12, 8))] == [
        utc(2026, 12, 4, 4),
        utc(2026, 12, 7, 4),
    ]
    three_times = MaintenanceWindow(starts_at=datetime(2025, 1, 1, 4), duration_seconds=60, rrule="FREQ=DAILY;COUNT=3")
    assert occurrences(three_times, utc(2026, 1, 1), utc(2026, 12, 31)) == []
    assert len(occurrences(three_times, utc(2024, 12, 31), utc(2026, 12, 31))) == 3
