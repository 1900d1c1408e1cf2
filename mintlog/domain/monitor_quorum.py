"""The overall state of a monitor checked from several locations, from the confirmed state of each. Pure code.

Each location confirms its own state from its own checks (`mintlog.domain.monitor_maintenance.apply_check`:
`down_after`, `confirmation`, `up_after`, maintenance windows). `apply_quorum` then gives the monitor's state:

- `maintenance` when the location that just reported is in a maintenance window of the monitor;
- `down` when at least `quorum` of the listed locations are `down`;
- otherwise `up` when at least one listed location is `up`;
- otherwise (no location up, too few down: they are still confirming, after a window or an edit) the state it
  had when that was `up` or `down`, else `pending`.

A transition is reported exactly when that state changes. Like a single-location monitor, a monitor that was
`down` when a maintenance window began remembers it (`state_before_maintenance`), so its first `up` after the
window is reported as `down` → `up` and resolves the incident opened before the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import msgspec

from mintlog.domain.monitors import MonitorState, MonitorStatus, Transition

__all__ = ["apply_quorum", "quorum_state"]


def quorum_state(
    states: Mapping[str, MonitorStatus], *, locations: Sequence[str], quorum: int, current: MonitorState = "pending"
) -> MonitorState:
    """The state of a monitor (outside maintenance) in state `current` whose `locations` are in `states` (a
    location missing from it has confirmed nothing yet)."""
    confirmed = [states[location].state for location in locations if location in states]
    if confirmed.count("down") >= quorum:
        return "down"
    if "up" in confirmed:
        return "up"
    return current if current in ("up", "down") else "pending"


def apply_quorum(
    overall: MonitorStatus,
    states: Mapping[str, MonitorStatus],
    *,
    reporting: str,
    locations: Sequence[str],
    quorum: int,
    at: datetime,
) -> tuple[MonitorStatus, Transition | None]:
    """The monitor's status after location `reporting` recorded its status (already in `states`), and the
    transition it makes (None when the state holds). The check facts (`last_*`, the streaks) are the reporting
    location's."""
    reported = states[reporting]
    target: MonitorState = (
        "maintenance"
        if reported.state == "maintenance"
        else quorum_state(states, locations=locations, quorum=quorum, current=overall.state)
    )
    facts = msgspec.structs.replace(
        overall,
        consecutive_failures=reported.consecutive_failures,
        consecutive_successes=reported.consecutive_successes,
        last_check_at=reported.last_check_at,
        last_ok=reported.last_ok,
        last_error=reported.last_error,
        last_latency_ms=reported.last_latency_ms,
        recent_failures=reported.recent_failures,
    )
    if target == overall.state:
        return facts, None
    before = overall.state_before_maintenance
    if target == "maintenance":
        before = before if overall.state == "pending" and before is not None else overall.state
    previous: MonitorState = overall.state
    if target == "up" and before == "down" and overall.state in ("maintenance", "pending"):
        previous = "down"
    seq = overall.transition_seq + 1
    updated = msgspec.structs.replace(
        facts,
        state=target,
        since=at,
        transition_seq=seq,
        state_before_maintenance=before if target in ("maintenance", "pending") else None,
    )
    return updated, Transition(previous=previous, current=target, at=at, seq=seq)
