"""The confirmation state machine around maintenance windows: a check in a window confirms nothing, leaving it
starts a fresh confirmation, and a monitor down before the window resolves its incident when it comes back up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mintlog.domain.monitor_maintenance import apply_check
from mintlog.domain.monitors import MonitorStatus, Transition

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def check(
    status: MonitorStatus, *, ok: bool, minute: int, in_maintenance: bool, down_after: int = 2, up_after: int = 1
) -> tuple[MonitorStatus, Transition | None]:
    return apply_check(
        status,
        in_maintenance=in_maintenance,
        ok=ok,
        at=T0 + timedelta(minutes=minute),
        latency_ms=5.0,
        error=None if ok else "status 503",
        down_after=down_after,
        up_after=up_after,
    )


def test_failures_inside_a_window_never_confirm_down_and_the_entry_is_one_transition() -> None:
    status = MonitorStatus(state="up", transition_seq=3)
    status, entered = check(status, ok=False, minute=0, in_maintenance=True)
    assert entered is not None
    assert (entered.previous, entered.current, entered.seq) == ("up", "maintenance", 4)
    for minute in range(1, 6):
        status, transition = check(status, ok=False, minute=minute, in_maintenance=True)
        assert transition is None
    assert status.state == "maintenance"
    assert (status.consecutive_failures, status.last_ok, status.last_error) == (0, False, "status 503")
    assert status.since == T0


def test_after_the_window_a_fresh_confirmation_is_needed_before_down() -> None:
    status, _ = check(MonitorStatus(state="up"), ok=False, minute=0, in_maintenance=True)
    status, left = check(status, ok=False, minute=1, in_maintenance=False)
    # One failure after the window is not enough with down_after=2; leaving is still a state change (SLA).
    assert left is not None
    assert (left.previous, left.current) == ("maintenance", "pending")
    assert (status.state, status.consecutive_failures) == ("pending", 1)
    status, down = check(status, ok=False, minute=2, in_maintenance=False)
    assert down is not None
    assert (down.previous, down.current) == ("pending", "down")
    assert status.state_before_maintenance is None


def test_leaving_straight_into_a_confirmed_state_is_one_transition_from_maintenance() -> None:
    status, _ = check(MonitorStatus(state="pending"), ok=True, minute=0, in_maintenance=True)
    status, transition = check(status, ok=True, minute=1, in_maintenance=False)
    assert transition is not None
    assert (transition.previous, transition.current) == ("maintenance", "up")
    assert status.state == "up"


def test_a_monitor_down_before_the_window_reports_down_to_up_so_its_incident_resolves() -> None:
    status, _ = check(MonitorStatus(state="down"), ok=False, minute=0, in_maintenance=True)
    assert status.state_before_maintenance == "down"
    status, transition = check(status, ok=True, minute=1, in_maintenance=False, up_after=2)
    assert transition is not None
    assert transition.current == "pending"
    assert status.state_before_maintenance == "down"
    status, transition = check(status, ok=True, minute=2, in_maintenance=False, up_after=2)
    assert transition is not None
    assert (transition.previous, transition.current) == ("down", "up")
    assert status.state_before_maintenance is None


def test_a_monitor_up_before_the_window_does_not_report_a_recovery() -> None:
    status, _ = check(MonitorStatus(state="up"), ok=True, minute=0, in_maintenance=True)
    status, transition = check(status, ok=True, minute=1, in_maintenance=False)
    assert transition is not None
    assert (transition.previous, transition.current) == ("maintenance", "up")
