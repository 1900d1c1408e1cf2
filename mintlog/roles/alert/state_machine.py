"""The alert state machine of one group of one rule. Pure code: the evaluator feeds it one verdict per tick.

    ok ──breach──▶ pending ──breach for for_seconds──▶ firing ──clear (after keep_firing_for_seconds)──▶ resolved
     ▲               │ clear                              ▲                                              │
     └───────────────┘                                    └──────────────── breach ◀─────────────────────┘

- `for_seconds` 0 goes from ok (or resolved) straight to firing.
- A firing alert whose count clears stays firing until `keep_firing_for_seconds` have passed since its last
  breach (0: it resolves at the first clear evaluation).
- `resolved` is a resting state like `ok`: it stays until the next breach (no `resolved → ok` transition).
- `nodata` and `error` remember the tracked state they interrupted (`GroupState.resume_state`, with its
  `pending_since` and `last_breach_at`). When data can be read again, evaluation continues from there: a
  firing alert whose store went down never resolves because of the outage, only once a real count clears it.
- Every change of `state` is a transition (`transition_seq` + 1); staying put is not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from mintlog.domain.alerting import AlertState
from mintlog.ports.alerting import GroupState, TrackedState

__all__ = ["Step", "Verdict", "step"]

Verdict = Literal["breaching", "clear", "nodata", "error", "keep"]
"""What one evaluation says of a group: its count crosses the threshold (`breaching`) or not (`clear`), the
window had no data and the rule says so (`nodata`), the count could not be read (`error`), or the rule's
`no_data: keep_state` asks to change nothing (`keep`)."""


@dataclass(frozen=True, slots=True)
class Step:
    """The group's state after one verdict, and the transition `(previous, new)` when `state` changed."""

    machine: GroupState
    transition: tuple[AlertState, AlertState] | None = None


def _tracked(
    current: GroupState, breaching: bool, now: datetime, *, for_seconds: int, keep_firing_for_seconds: int
) -> GroupState:
    """The next tracked state from `current.resume_state` (the machine without nodata and error)."""
    base = current.resume_state
    if base in ("ok", "resolved"):
        if not breaching:
            return replace(current, resume_state=base, pending_since=None)
        if for_seconds == 0:
            return replace(current, resume_state="firing", pending_since=None, last_breach_at=now)
        return replace(current, resume_state="pending", pending_since=now)
    if base == "pending":
        if not breaching:
            return replace(current, resume_state="ok", pending_since=None)
        started = current.pending_since or now
        if now - started >= timedelta(seconds=for_seconds):
            return replace(current, resume_state="firing", pending_since=None, last_breach_at=now)
        return replace(current, pending_since=started)
    # firing
    if breaching:
        return replace(current, last_breach_at=now)
    last_breach = current.last_breach_at or now
    if keep_firing_for_seconds > 0 and now - last_breach < timedelta(seconds=keep_firing_for_seconds):
        return replace(current, last_breach_at=last_breach)
    return replace(current, resume_state="resolved")


def step(
    current: GroupState, verdict: Verdict, now: datetime, *, for_seconds: int, keep_firing_for_seconds: int
) -> Step:
    """The group after `verdict` at `now`."""
    if verdict == "keep":
        return Step(current)
    if verdict in ("nodata", "error"):
        if current.state == verdict:
            return Step(current)
        new_state: AlertState = verdict
        machine = current
    else:
        machine = _tracked(
            current,
            verdict == "breaching",
            now,
            for_seconds=for_seconds,
            keep_firing_for_seconds=keep_firing_for_seconds,
        )
        new_state = machine.resume_state
    if new_state == current.state:
        return Step(replace(machine, state=new_state))
    moved = replace(machine, state=new_state, since=now, transition_seq=current.transition_seq + 1)
    return Step(moved, (current.state, new_state))


def resting(state: TrackedState) -> bool:
    """Whether a tracked state needs no attention (`ok`, `resolved`)."""
    return state in ("ok", "resolved")
