"""The alert state machine, table-driven: a sequence of verdicts, one per evaluation, and the transitions seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mintlog.ports.alerting import GroupState
from mintlog.roles.alert.state_machine import Verdict, step

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=60)


def run(verdicts: list[Verdict], *, for_seconds: int = 0, keep: int = 0) -> tuple[list[str], GroupState]:
    """Feed one verdict per interval; the transitions as `previous>new`, and the final state."""
    machine = GroupState(since=T0)
    seen: list[str] = []
    for index, verdict in enumerate(verdicts):
        moved = step(machine, verdict, T0 + index * INTERVAL, for_seconds=for_seconds, keep_firing_for_seconds=keep)
        if moved.transition is not None:
            seen.append(f"{moved.transition[0]}>{moved.transition[1]}")
            assert moved.machine.transition_seq == machine.transition_seq + 1
            assert moved.machine.since == T0 + index * INTERVAL
        else:
            assert moved.machine.transition_seq == machine.transition_seq
            assert moved.machine.state == machine.state
        machine = moved.machine
    return seen, machine


B: Verdict = "breaching"
C: Verdict = "clear"
N: Verdict = "nodata"
E: Verdict = "error"
K: Verdict = "keep"


@pytest.mark.parametrize(
    ("verdicts", "for_seconds", "keep", "transitions", "final"),
    [
        # Without for_seconds: fire at the first breach, stay firing silently, resolve at the first clear.
        ([C, B, B, B, C, C], 0, 0, ["ok>firing", "firing>resolved"], "resolved"),
        # resolved is a resting state: it fires again at the next breach, without passing through ok.
        ([B, C, B], 0, 0, ["ok>firing", "firing>resolved", "resolved>firing"], "firing"),
        # for_seconds 120: pending for two intervals before firing.
        ([B, B, B, B], 120, 0, ["ok>pending", "pending>firing"], "firing"),
        # A breach that clears while pending goes back to ok and never fires.
        ([B, B, C, B], 120, 0, ["ok>pending", "pending>ok", "ok>pending"], "pending"),
        # keep_firing_for 120: a clear right after a breach keeps firing until 120 s passed since the last breach.
        ([B, C, C, C], 0, 120, ["ok>firing", "firing>resolved"], "resolved"),
        ([B, C, B, C, C, C], 0, 120, ["ok>firing", "firing>resolved"], "resolved"),
        # A store outage while firing is `error`, and never a resolve; recovery continues from firing.
        ([B, E, E, B], 0, 0, ["ok>firing", "firing>error", "error>firing"], "firing"),
        # ...and once data says the count cleared, it resolves then (a real resolve).
        ([B, E, C], 0, 0, ["ok>firing", "firing>error", "error>resolved"], "resolved"),
        # An error on an ok alert, then data again.
        ([C, E, C], 0, 0, ["ok>error", "error>ok"], "ok"),
        # nodata remembers the state it interrupted, like error.
        ([B, N, N, C], 0, 0, ["ok>firing", "firing>nodata", "nodata>resolved"], "resolved"),
        ([N, B], 0, 0, ["ok>nodata", "nodata>firing"], "firing"),
        # keep_state changes nothing at all.
        ([B, K, K, C], 0, 0, ["ok>firing", "firing>resolved"], "resolved"),
        # Pending survives an error: the pending time keeps running from the first breach.
        ([B, E, B], 120, 0, ["ok>pending", "pending>error", "error>firing"], "firing"),
    ],
)
def test_transitions(verdicts: list[Verdict], for_seconds: int, keep: int, transitions: list[str], final: str) -> None:
    seen, machine = run(verdicts, for_seconds=for_seconds, keep=keep)
    assert seen == transitions
    assert machine.state == final


def test_an_outage_keeps_the_last_breach_so_keep_firing_counts_from_it() -> None:
    seen, machine = run([B, E, C], keep=600)
    # The clear comes 120 s after the last breach, within keep_firing_for: still firing.
    assert seen == ["ok>firing", "firing>error", "error>firing"]
    assert machine.last_breach_at == T0
