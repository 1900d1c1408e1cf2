"""The quorum of a monitor checked from several locations (`mintlog.domain.monitor_quorum`), each location
confirming its own state first (`apply_check`), and the validation of `locations` and `quorum`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mintlog.domain.heartbeat_schedule import PeriodSchedule
from mintlog.domain.monitor_maintenance import apply_check
from mintlog.domain.monitor_quorum import apply_quorum, quorum_state
from mintlog.domain.monitors import MonitorSpec, MonitorStatus, validate_monitor
from mintlog.domain.uptime_checks import DnsCheck, HeartbeatCheck
from mintlog.errors import UnprocessableEntity

T0 = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


class Monitor:
    """One monitor's overall status and its locations' statuses, fed one result at a time."""

    def __init__(self, locations: list[str], *, quorum: int, down_after: int = 1, up_after: int = 1) -> None:
        self.locations = locations
        self.quorum = quorum
        self.down_after = down_after
        self.up_after = up_after
        self.overall = MonitorStatus()
        self.states: dict[str, MonitorStatus] = {}
        self.step = 0

    def report(self, location: str, symbol: str) -> str:
        """Location `location` checked: "+" ok, "-" failed, "m" failed inside a maintenance window. Returns the
        overall state, "!" appended at a transition and the previous state when it is not the one before."""
        self.step += 1
        at = T0 + timedelta(seconds=30 * self.step)
        status, _ = apply_check(
            self.states.get(location, MonitorStatus()),
            in_maintenance=symbol == "m",
            ok=symbol == "+",
            at=at,
            latency_ms=1.0,
            error=None if symbol == "+" else "wrong answer",
            down_after=self.down_after,
            up_after=self.up_after,
        )
        self.states[location] = status
        before = self.overall.state
        self.overall, transition = apply_quorum(
            self.overall, self.states, reporting=location, locations=self.locations, quorum=self.quorum, at=at
        )
        if transition is None:
            return self.overall.state
        assert transition.seq == self.overall.transition_seq
        suffix = "" if transition.previous == before else f"<{transition.previous}"
        return f"{self.overall.state}!{suffix}"


def run(monitor: Monitor, reports: list[tuple[str, str]]) -> list[str]:
    return [monitor.report(location, symbol) for location, symbol in reports]


def test_two_of_two_stays_up_while_one_location_fails_and_goes_down_when_both_do() -> None:
    monitor = Monitor(["eu", "us"], quorum=2)
    assert run(monitor, [("eu", "+"), ("us", "+"), ("eu", "-"), ("us", "+"), ("eu", "-")]) == [
        "up!",
        "up",
        "up",
        "up",
        "up",
    ]
    assert monitor.states["eu"].state == "down"
    assert run(monitor, [("us", "-"), ("us", "-"), ("eu", "+")]) == ["down!", "down", "up!"]


def test_one_of_two_goes_down_when_any_location_is_down() -> None:
    monitor = Monitor(["eu", "us"], quorum=1)
    assert run(monitor, [("eu", "+"), ("us", "+"), ("us", "-"), ("eu", "+"), ("us", "+")]) == [
        "up!",
        "up",
        "down!",
        "down",
        "up!",
    ]


def test_each_location_confirms_its_own_state_before_the_quorum_counts_it() -> None:
    # down_after=2 per location: one failure of each location is no outage, even with quorum 1.
    monitor = Monitor(["eu", "us"], quorum=1, down_after=2)
    assert run(monitor, [("eu", "+"), ("eu", "-"), ("us", "-"), ("eu", "+"), ("us", "-")]) == [
        "up!",
        "up",
        "up",
        "up",
        "down!",
    ]


def test_two_of_three() -> None:
    monitor = Monitor(["a", "b", "c"], quorum=2)
    assert run(monitor, [("a", "-"), ("b", "+"), ("c", "-"), ("a", "+")]) == ["pending", "up!", "down!", "up!"]


def test_a_window_holds_the_monitor_in_maintenance_and_an_up_after_it_resolves_the_earlier_down() -> None:
    monitor = Monitor(["eu", "us"], quorum=1)
    assert run(monitor, [("eu", "-"), ("eu", "m"), ("us", "m"), ("eu", "+"), ("us", "+")]) == [
        "down!",
        "maintenance!",
        "maintenance",
        "up!<down",
        "up",
    ]
    assert monitor.overall.state_before_maintenance is None


def test_a_location_missing_from_the_states_has_confirmed_nothing() -> None:
    states = {"eu": MonitorStatus(state="down")}
    assert quorum_state(states, locations=["eu", "us"], quorum=2) == "pending"
    assert quorum_state(states, locations=["eu", "us"], quorum=1) == "down"
    # A location no longer listed does not count.
    assert quorum_state({**states, "old": MonitorStatus(state="down")}, locations=["eu", "us"], quorum=2) == "pending"


DNS = DnsCheck(name="shop.example.com", expected=["192.0.2.1"])
HEARTBEAT = HeartbeatCheck(schedule=PeriodSchedule(period_seconds=60, grace_seconds=0))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"locations": ["eu", "us"], "quorum": 3}, "quorum"),
        ({"quorum": 1}, "quorum"),
        ({"locations": []}, "locations"),
        ({"locations": ["eu", "us", "eu"]}, "locations[2]"),
        (
            {"locations": ["eu"], "check": HEARTBEAT},
            "locations",
        ),
    ],
)
def test_bad_locations_or_quorum_are_a_422_naming_the_field(changes: dict[str, object], field: str) -> None:
    spec = MonitorSpec(name="dns", check=changes.pop("check", DNS), **changes)  # type: ignore[arg-type]
    with pytest.raises(UnprocessableEntity) as caught:
        validate_monitor(spec, min_interval_seconds=30)
    assert caught.value.extra["field"] == field


def test_locations_and_a_quorum_up_to_their_number_are_valid() -> None:
    spec = MonitorSpec(name="dns", check=DNS, locations=["eu", "us"], quorum=2)
    assert validate_monitor(spec, min_interval_seconds=30) is spec


def test_locations_still_confirming_keep_the_monitors_confirmed_state() -> None:
    # After an edit every location starts again from pending: one failure (down_after=2) is not enough to say
    # anything, so the monitor stays down rather than falling back to pending.
    monitor = Monitor(["eu", "us"], quorum=1, down_after=2)
    monitor.overall = MonitorStatus(state="down", transition_seq=3)
    assert run(monitor, [("eu", "-"), ("us", "-"), ("eu", "+")]) == ["down", "down", "up!"]
    assert quorum_state({}, locations=["eu"], quorum=1, current="up") == "up"
    assert quorum_state({}, locations=["eu"], quorum=1, current="maintenance") == "pending"
