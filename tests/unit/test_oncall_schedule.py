"""Schedule rendering against hand-computed tables: wall-clock hand-offs across DST in Europe/Berlin and
America/New_York (which change on different dates), exact custom turns, layers overlapping, restrictions
(wrapping past midnight), overrides across a hand-off and overlapping each other, merging and validation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from mintlog.domain.oncall_schedule import (
    Layer,
    OverrideSpan,
    Restriction,
    ScheduleSpec,
    on_call_at,
    render_shifts,
    validate_schedule,
)
from mintlog.errors import UnprocessableEntity


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def table(
    spec: ScheduleSpec, start: str, end: str, overrides: Sequence[OverrideSpan] = ()
) -> list[tuple[str, str, str]]:
    return [
        (shift.person_id, shift.start.strftime("%m-%d %H:%M"), shift.end.strftime("%m-%d %H:%M"))
        for shift in render_shifts(spec, overrides, utc(start), utc(end))
    ]


def schedule(zone: str, *layers: Layer) -> ScheduleSpec:
    return ScheduleSpec(name="primary", time_zone=zone, layers=list(layers))


def layer(participants: list[str], turn: Any, start: str, **extra: Any) -> Layer:
    return Layer(participants=participants, turn=turn, rotation_start=datetime.fromisoformat(start), **extra)


def test_a_daily_berlin_rotation_hands_off_at_nine_local_across_the_spring_change() -> None:
    # Berlin: CET (UTC+1) until 2026-03-29 02:00, then CEST (UTC+2): 09:00 local is 08:00Z, then 07:00Z.
    spec = schedule("Europe/Berlin", layer(["ann", "bob"], "daily", "2026-03-27T09:00"))
    assert table(spec, "2026-03-27T08:00", "2026-03-31T08:00") == [
        ("ann", "03-27 08:00", "03-28 08:00"),  # 24 h
        ("bob", "03-28 08:00", "03-29 07:00"),  # 23 h: the night the clocks go forward
        ("ann", "03-29 07:00", "03-30 07:00"),
        ("bob", "03-30 07:00", "03-31 07:00"),
        ("ann", "03-31 07:00", "03-31 08:00"),
    ]


def test_a_daily_new_york_rotation_changes_on_its_own_date() -> None:
    # New York: EST (UTC-5) until 2026-03-08 02:00, then EDT (UTC-4); Berlin has not changed yet then.
    spec = schedule("America/New_York", layer(["ann", "bob"], "daily", "2026-03-07T09:00"))
    assert table(spec, "2026-03-07T14:00", "2026-03-10T13:00") == [
        ("ann", "03-07 14:00", "03-08 13:00"),  # 23 h
        ("bob", "03-08 13:00", "03-09 13:00"),
        ("ann", "03-09 13:00", "03-10 13:00"),
    ]
    berlin = schedule("Europe/Berlin", layer(["ann", "bob"], "daily", "2026-03-07T09:00"))
    assert table(berlin, "2026-03-07T08:00", "2026-03-09T08:00") == [
        ("ann", "03-07 08:00", "03-08 08:00"),
        ("bob", "03-08 08:00", "03-09 08:00"),
    ]


@pytest.mark.parametrize(
    ("zone", "start", "window", "expected"),
    [
        # Berlin falls back on 2026-10-25 (CEST UTC+2 -> CET UTC+1): the week holding it lasts 169 hours.
        (
            "Europe/Berlin",
            "2026-10-19T09:00",
            ("2026-10-19T07:00", "2026-11-02T08:00"),
            [("ann", "10-19 07:00", "10-26 08:00"), ("bob", "10-26 08:00", "11-02 08:00")],
        ),
        # New York falls back a week later, on 2026-11-01 (EDT UTC-4 -> EST UTC-5).
        (
            "America/New_York",
            "2026-10-26T09:00",
            ("2026-10-26T13:00", "2026-11-09T14:00"),
            [("ann", "10-26 13:00", "11-02 14:00"), ("bob", "11-02 14:00", "11-09 14:00")],
        ),
    ],
)
def test_a_weekly_rotation_hands_off_on_monday_nine_local_across_the_autumn_change(
    zone: str, start: str, window: tuple[str, str], expected: list[tuple[str, str, str]]
) -> None:
    spec = schedule(zone, layer(["ann", "bob"], "weekly", start))
    assert table(spec, *window) == expected


def test_custom_turns_are_exact_durations_across_dst() -> None:
    spec = schedule("Europe/Berlin", layer(["ann", "bob"], "custom", "2026-03-28T21:00", turn_seconds=12 * 3600))
    assert table(spec, "2026-03-28T20:00", "2026-03-30T08:00") == [
        ("ann", "03-28 20:00", "03-29 08:00"),  # 21:00 CET to 10:00 CEST: 12 hours, not a wall-clock 09:00
        ("bob", "03-29 08:00", "03-29 20:00"),
        ("ann", "03-29 20:00", "03-30 08:00"),
    ]


def test_hourly_turns_are_exact_hours_and_a_hand_off_in_the_gap_happens_after_it() -> None:
    hourly = schedule("Europe/Berlin", layer(["ann", "bob"], "hourly", "2026-03-29T00:00"))
    assert table(hourly, "2026-03-28T23:00", "2026-03-29T02:00") == [
        ("ann", "03-28 23:00", "03-29 00:00"),
        ("bob", "03-29 00:00", "03-29 01:00"),
        ("ann", "03-29 01:00", "03-29 02:00"),
    ]
    # 02:30 does not exist in Berlin on 2026-03-29: as in RFC 5545, it is read with the offset before the gap
    # (02:30+01:00, i.e. 03:30 CEST, 01:30Z).
    gap = schedule("Europe/Berlin", layer(["ann", "bob"], "daily", "2026-03-28T02:30"))
    assert table(gap, "2026-03-28T01:30", "2026-03-30T00:30") == [
        ("ann", "03-28 01:30", "03-29 01:30"),
        ("bob", "03-29 01:30", "03-30 00:30"),
    ]


def test_nobody_is_on_call_before_the_rotation_starts() -> None:
    spec = schedule("UTC", layer(["ann"], "daily", "2026-06-01T09:00"))
    assert table(spec, "2026-06-01T00:00", "2026-06-01T12:00") == [("ann", "06-01 09:00", "06-01 12:00")]
    assert on_call_at(spec, [], utc("2026-06-01T08:59")) is None


def test_a_higher_layer_with_restrictions_wins_only_inside_them() -> None:
    # 2026-06-01 is a Monday. Layer 0 rotates daily at midnight; layer 1 covers business hours on weekdays.
    spec = schedule(
        "UTC",
        layer(["ann", "bob"], "daily", "2026-06-01T00:00"),
        layer(
            ["cat"],
            "weekly",
            "2026-06-01T00:00",
            restrictions=[Restriction(start="09:00", end="17:00", days=["mon", "tue", "wed", "thu", "fri"])],
        ),
    )
    assert table(spec, "2026-06-01T00:00", "2026-06-03T00:00") == [
        ("ann", "06-01 00:00", "06-01 09:00"),
        ("cat", "06-01 09:00", "06-01 17:00"),
        ("ann", "06-01 17:00", "06-02 00:00"),
        ("bob", "06-02 00:00", "06-02 09:00"),
        ("cat", "06-02 09:00", "06-02 17:00"),
        ("bob", "06-02 17:00", "06-03 00:00"),
    ]
    # Saturday 2026-06-06: the restricted layer has nobody, the daily one shows through.
    assert on_call_at(spec, [], utc("2026-06-06T12:00")) == "bob"


def test_a_restriction_that_ends_before_it_starts_wraps_past_midnight_in_the_schedules_zone() -> None:
    # Friday nights 22:00 to Saturday 06:00 New York time (EDT, UTC-4 in June).
    spec = schedule(
        "America/New_York",
        layer(
            ["ann"], "weekly", "2026-06-01T00:00", restrictions=[Restriction(start="22:00", end="06:00", days=["fri"])]
        ),
    )
    assert table(spec, "2026-06-01T00:00", "2026-06-15T00:00") == [
        ("ann", "06-06 02:00", "06-06 10:00"),
        ("ann", "06-13 02:00", "06-13 10:00"),
    ]


def test_an_override_across_a_hand_off_covers_exactly_its_range_and_the_latest_created_wins() -> None:
    # Berlin summer (UTC+2): the daily 09:00 hand-off is at 07:00Z.
    spec = schedule("Europe/Berlin", layer(["ann", "bob"], "daily", "2026-06-01T09:00"))
    cover = OverrideSpan(
        person_id="cat", start=utc("2026-06-02T05:00"), end=utc("2026-06-02T09:00"), created_at=utc("2026-05-01T00:00")
    )
    assert table(spec, "2026-06-01T07:00", "2026-06-03T07:00", [cover]) == [
        ("ann", "06-01 07:00", "06-02 05:00"),
        ("cat", "06-02 05:00", "06-02 09:00"),
        ("bob", "06-02 09:00", "06-03 07:00"),
    ]
    later = OverrideSpan(
        person_id="dan", start=utc("2026-06-02T08:00"), end=utc("2026-06-02T10:00"), created_at=utc("2026-05-02T00:00")
    )
    assert table(spec, "2026-06-01T07:00", "2026-06-03T07:00", [later, cover]) == [
        ("ann", "06-01 07:00", "06-02 05:00"),
        ("cat", "06-02 05:00", "06-02 08:00"),
        ("dan", "06-02 08:00", "06-02 10:00"),
        ("bob", "06-02 10:00", "06-03 07:00"),
    ]
    # Created earlier, the wider override is hidden where the later one lies inside it.
    wide = OverrideSpan(
        person_id="eve", start=utc("2026-06-02T00:00"), end=utc("2026-06-02T12:00"), created_at=utc("2026-04-01T00:00")
    )
    assert on_call_at(spec, [wide, cover], utc("2026-06-02T06:00")) == "cat"
    assert on_call_at(spec, [wide, cover], utc("2026-06-02T10:00")) == "eve"
    assert on_call_at(spec, [wide, cover], utc("2026-06-02T12:00")) == "bob"


def test_adjacent_turns_of_one_person_are_one_shift() -> None:
    spec = schedule("UTC", layer(["ann", "ann", "bob"], "daily", "2026-06-01T00:00"))
    assert table(spec, "2026-06-01T00:00", "2026-06-05T00:00") == [
        ("ann", "06-01 00:00", "06-03 00:00"),
        ("bob", "06-03 00:00", "06-04 00:00"),
        ("ann", "06-04 00:00", "06-05 00:00"),
    ]


def test_a_turn_far_from_the_start_is_found_without_walking_the_history() -> None:
    spec = schedule("Europe/Berlin", layer(["ann", "bob", "cat"], "daily", "1990-01-01T09:00"))
    # 2026-06-01 is day 13,300 after 1990-01-01: 13,300 mod 3 = 1, so bob has the turn that starts then.
    assert (datetime(2026, 6, 1) - datetime(1990, 1, 1)).days == 13_300
    assert on_call_at(spec, [], utc("2026-06-01T07:00")) == "bob"
    assert on_call_at(spec, [], utc("2026-06-01T06:59")) == "ann"


def _invalid_field(spec: ScheduleSpec, people: set[str]) -> str:
    with pytest.raises(UnprocessableEntity) as caught:
        validate_schedule(spec, people)
    return str(caught.value.extra["field"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"layers": []}, "layers"),
        (
            {"layers": [{"participants": [], "turn": "daily", "rotation_start": "2026-06-01T09:00:00"}]},
            "layers[0].participants",
        ),
        (
            {"layers": [{"participants": ["ann", "zed"], "turn": "daily", "rotation_start": "2026-06-01T09:00:00"}]},
            "layers[0].participants[1]",
        ),
        (
            {"layers": [{"participants": ["ann"], "turn": "custom", "rotation_start": "2026-06-01T09:00:00"}]},
            "layers[0].turn_seconds",
        ),
        (
            {
                "layers": [
                    {
                        "participants": ["ann"],
                        "turn": "custom",
                        "turn_seconds": 0,
                        "rotation_start": "2026-06-01T09:00:00",
                    }
                ]
            },
            "layers[0].turn_seconds",
        ),
        (
            {"layers": [{"participants": ["ann"], "turn": "daily", "rotation_start": "2026-06-01T09:00:00+02:00"}]},
            "layers[0].rotation_start",
        ),
        (
            {
                "layers": [
                    {
                        "participants": ["ann"],
                        "turn": "daily",
                        "rotation_start": "2026-06-01T09:00:00",
                        "restrictions": [{"start": "09:00", "end": "09:00"}],
                    }
                ]
            },
            "layers[0].restrictions[0].end",
        ),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    body = {
        "name": "primary",
        "time_zone": "Europe/Berlin",
        "layers": [{"participants": ["ann"], "turn": "daily", "rotation_start": "2026-06-01T09:00:00"}],
    } | changes
    assert _invalid_field(msgspec.convert(body, ScheduleSpec), {"ann"}) == field


def test_a_whole_day_restriction_is_accepted() -> None:
    spec = schedule(
        "UTC",
        layer(
            ["ann"], "daily", "2026-06-01T00:00", restrictions=[Restriction(start="00:00", end="24:00", days=["mon"])]
        ),
    )
    validate_schedule(spec, {"ann"})
    assert table(spec, "2026-06-01T00:00", "2026-06-03T00:00") == [("ann", "06-01 00:00", "06-02 00:00")]


def test_shifts_render_in_a_window_inside_one_turn() -> None:
    spec = schedule("UTC", layer(["ann", "bob"], "weekly", "2026-06-01T00:00"))
    shifts = render_shifts(spec, [], utc("2026-06-03T00:00"), utc("2026-06-03T00:00") + timedelta(hours=1))
    assert [(shift.person_id, shift.end - shift.start) for shift in shifts] == [("ann", timedelta(hours=1))]


def test_on_call_at_agrees_with_the_rendered_shifts_at_every_hour_of_two_weeks() -> None:
    spec = schedule(
        "America/New_York",
        layer(["ann", "bob", "cat"], "daily", "2026-10-20T09:00:00"),
        layer(["dan"], "hourly", "2026-10-20T00:00:00", restrictions=[Restriction(start="22:00", end="02:00")]),
        layer(
            ["eve", "fay"],
            "custom",
            "2026-10-25T12:00:00",
            turn_seconds=5400,
            restrictions=[Restriction(start="12:00", end="14:00", days=["sat", "sun"])],
        ),
    )
    overrides = [
        OverrideSpan(
            person_id="gil",
            start=utc("2026-10-31T20:00"),
            end=utc("2026-11-02T03:00"),
            created_at=utc("2026-10-01T00:00"),
        ),
        OverrideSpan(
            person_id="hal",
            start=utc("2026-11-01T05:00"),
            end=utc("2026-11-01T07:30"),
            created_at=utc("2026-10-02T00:00"),
        ),
    ]
    start = utc("2026-10-24T00:00")
    shifts = render_shifts(spec, overrides, start, start + timedelta(days=14))
    for hour in range(14 * 24):
        at = start + timedelta(hours=hour, minutes=17)
        expected = next((shift.person_id for shift in shifts if shift.start <= at < shift.end), None)
        assert on_call_at(spec, overrides, at) == expected, at
