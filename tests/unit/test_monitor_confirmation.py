"""The confirmation state machine of uptime monitors (`mintlog.domain.monitors.apply_outcome`), and the
validation of a monitor's timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from mintlog.domain.monitors import (
    Confirmation,
    MonitorSpec,
    MonitorStatus,
    apply_outcome,
    paused_status,
    validate_monitor,
)
from mintlog.domain.uptime_checks import HttpCheck, TcpCheck
from mintlog.errors import UnprocessableEntity

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def run(outcomes: str, *, down_after: int, up_after: int, start: MonitorStatus | None = None) -> list[str]:
    """The state after each outcome of `outcomes` ("+" ok, "-" failed), and "!" appended at each transition."""
    status = start or MonitorStatus()
    states: list[str] = []
    for index, symbol in enumerate(outcomes):
        status, transition = apply_outcome(
            status,
            ok=symbol == "+",
            at=T0 + timedelta(seconds=30 * index),
            latency_ms=1.0,
            error=None if symbol == "+" else "refused",
            down_after=down_after,
            up_after=up_after,
        )
        states.append(status.state + ("!" if transition else ""))
    return states


@pytest.mark.parametrize(
    ("outcomes", "down_after", "up_after", "expected"),
    [
        ("+", 2, 1, ["up!"]),
        ("--", 2, 1, ["pending", "down!"]),
        ("+-+-+-", 2, 1, ["up!", "up", "up", "up", "up", "up"]),  # single failures are no outage
        ("+--+", 2, 1, ["up!", "up", "down!", "up!"]),
        ("+---++", 3, 2, ["pending", "pending", "pending", "down!", "down", "up!"]),
        ("-", 1, 1, ["down!"]),
        ("+" + "-" * 10, 10, 1, ["up!"] + ["up"] * 9 + ["down!"]),
    ],
)
def test_a_state_changes_only_after_its_confirmation(
    outcomes: str, down_after: int, up_after: int, expected: list[str]
) -> None:
    assert run(outcomes, down_after=down_after, up_after=up_after) == expected


def test_a_transition_is_numbered_and_the_status_keeps_the_last_check() -> None:
    status, transition = apply_outcome(
        MonitorStatus(state="up", since=T0, transition_seq=4, consecutive_failures=1),
        ok=False,
        at=T0,
        latency_ms=9.0,
        error="timed out after 5s",
        down_after=2,
        up_after=1,
    )
    assert transition is not None
    assert (transition.previous, transition.current, transition.seq) == ("up", "down", 5)
    assert (status.last_error, status.last_latency_ms, status.consecutive_failures) == ("timed out after 5s", 9.0, 2)


def test_resuming_starts_again_from_pending() -> None:
    paused = paused_status(MonitorStatus(state="down", consecutive_failures=4), paused=True, now=T0)
    assert paused.state == "paused"
    resumed = paused_status(paused, paused=False, now=T0)
    assert (resumed.state, resumed.consecutive_failures) == ("pending", 0)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (MonitorSpec(name="a", check=HttpCheck(url="http://x/"), interval_seconds=10), "interval_seconds"),
        (
            MonitorSpec(name="a", check=HttpCheck(url="http://x/"), interval_seconds=60, timeout_seconds=60),
            "timeout_seconds",
        ),
        (MonitorSpec(name="a", check=TcpCheck(host="", port=80)), "check.host"),
    ],
)
def test_an_unusable_monitor_is_a_422_naming_the_field(spec: MonitorSpec, field: str) -> None:
    with pytest.raises(UnprocessableEntity) as raised:
        validate_monitor(spec, min_interval_seconds=30)
    assert raised.value.extra["field"] == field


def run_window(outcomes: str, *, failures: int, window: int, down_after: int = 10, up_after: int = 1) -> list[str]:
    """Like `run`, with an `x of n` confirmation."""
    status = MonitorStatus()
    states: list[str] = []
    for index, symbol in enumerate(outcomes):
        status, transition = apply_outcome(
            status,
            ok=symbol == "+",
            at=T0 + timedelta(seconds=30 * index),
            latency_ms=1.0,
            error=None if symbol == "+" else "refused",
            down_after=down_after,
            up_after=up_after,
            confirmation=Confirmation(failures=failures, window=window),
        )
        states.append(status.state + ("!" if transition else ""))
    return states


@pytest.mark.parametrize(
    ("outcomes", "failures", "window", "expected"),
    [
        # 3 of the last 5 failed, none in a row: down on the third failure.
        ("+-+-+-", 3, 5, ["up!", "up", "up", "up", "up", "down!"]),
        # The same failures spread over more than 5 results never reach 3 in any 5.
        ("+-++-++-++-", 3, 5, ["up!"] + ["up"] * 10),
        # Recovery (up_after=1) starts a fresh count: the failures before the outage do not count again.
        ("+--+-", 2, 4, ["up!", "up", "down!", "up!", "up"]),
        ("+--+--", 2, 4, ["up!", "up", "down!", "up!", "up", "down!"]),
        # x == n: every result of the window failed.
        ("+---", 3, 3, ["up!", "up", "up", "down!"]),
    ],
)
def test_x_failures_of_the_last_n_confirm_down(outcomes: str, failures: int, window: int, expected: list[str]) -> None:
    assert run_window(outcomes, failures=failures, window=window) == expected


def test_consecutive_failures_still_confirm_down_with_a_window() -> None:
    assert run_window("+--", failures=5, window=10, down_after=2) == ["up!", "up", "down!"]


@pytest.mark.parametrize(
    ("confirmation", "field"),
    [
        ({"failures": 4, "window": 3}, "confirmation.failures"),
        ({"failures": 1, "window": 51}, "confirmation.window"),
        ({"failures": 0, "window": 3}, "confirmation.failures"),
        ({"failures": 2}, "confirmation"),
        ({"failures": 2, "window": 3, "extra": 1}, "confirmation"),
    ],
)
def test_a_bad_confirmation_is_a_422_naming_its_field(confirmation: dict[str, object], field: str) -> None:
    body = {"name": "api", "check": {"type": "tcp", "host": "example.com", "port": 443}, "confirmation": confirmation}
    with pytest.raises((UnprocessableEntity, msgspec.ValidationError)) as caught:
        validate_monitor(msgspec.convert(body, MonitorSpec), min_interval_seconds=30)
    if isinstance(caught.value, UnprocessableEntity):
        assert caught.value.extra["field"] == field
    else:
        assert f"$.{field}" in str(caught.value)
