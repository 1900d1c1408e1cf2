"""The confirmation state machine of a monitor with maintenance windows around it. Pure code, no I/O.

Wraps `mintlog.domain.monitors.apply_outcome`:
- a check inside a window puts the monitor in the `maintenance` state (one transition when it enters), resets
  its streaks and confirms nothing: no `down`, no `up`, so no incident is opened or resolved by it;
- the first check after the window starts a fresh confirmation from `pending` (streaks at zero): `down_after`
  failures make it `down` (an incident opens, or the open one gets the alert again), `up_after` successes make
  it `up`. Leaving the window is always a transition (to `pending`, or straight to the confirmed state), so the
  time in maintenance ends there in the SLA;
- a monitor that was `down` when the window began keeps that in `state_before_maintenance`: its first confirmed
  `up` after the window is reported as `down` → `up`, which resolves the incident it opened before the window.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from mintlog.domain.monitors import Confirmation, MonitorState, MonitorStatus, Transition, apply_outcome

__all__ = ["apply_check"]


def apply_check(
    status: MonitorStatus,
    *,
    in_maintenance: bool,
    ok: bool,
    at: datetime,
    latency_ms: float | None,
    error: str | None,
    down_after: int,
    up_after: int,
    confirmation: Confirmation | None = None,
) -> tuple[MonitorStatus, Transition | None]:
    """The status after one check result, and the transition it makes (None when the state holds)."""
    if in_maintenance:
        return _in_window(status, ok=ok, at=at, latency_ms=latency_ms, error=error)
    before = status.state_before_maintenance
    leaving = status.state == "maintenance"
    start = (
        msgspec.structs.replace(
            status, state="pending", consecutive_failures=0, consecutive_successes=0, recent_failures=""
        )
        if leaving
        else status
    )
    updated, transition = apply_outcome(
        start,
        ok=ok,
        at=at,
        latency_ms=latency_ms,
        error=error,
        down_after=down_after,
        up_after=up_after,
        confirmation=confirmation,
    )
    if transition is None:
        if leaving:
            seq = status.transition_seq + 1
            left = msgspec.structs.replace(
                updated, state="pending", since=at, transition_seq=seq, state_before_maintenance=before
            )
            return left, Transition(previous="maintenance", current="pending", at=at, seq=seq)
        return msgspec.structs.replace(updated, state_before_maintenance=before), None
    previous: MonitorState = "maintenance" if leaving else transition.previous
    if before == "down" and transition.current == "up":
        previous = "down"
    return updated, Transition(previous=previous, current=transition.current, at=at, seq=transition.seq)


def _in_window(
    status: MonitorStatus, *, ok: bool, at: datetime, latency_ms: float | None, error: str | None
) -> tuple[MonitorStatus, Transition | None]:
    entering = status.state != "maintenance"
    seq = status.transition_seq + (1 if entering else 0)
    updated = MonitorStatus(
        state="maintenance",
        since=at if entering else status.since,
        consecutive_failures=0,
        consecutive_successes=0,
        last_check_at=at,
        last_ok=ok,
        last_error=None if ok else error,
        last_latency_ms=latency_ms,
        transition_seq=seq,
        state_before_maintenance=_confirmed_before(status) if entering else status.state_before_maintenance,
    )
    if not entering:
        return updated, None
    return updated, Transition(previous=status.state, current="maintenance", at=at, seq=seq)


def _confirmed_before(status: MonitorStatus) -> MonitorState:
    """The state to remember on entering a window: a monitor still waiting to confirm after an earlier window
    keeps the state it had before that one."""
    if status.state == "pending" and status.state_before_maintenance is not None:
        return status.state_before_maintenance
    return status.state
