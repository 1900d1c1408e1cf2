"""The monitors as due work of the role kit's `DueWorkScheduler`.

A monitor is due at `next_check_at`. Claiming it moves `next_check_at` one interval on with a compare-and-set
in the shared database (`MonitorStore.claim_checks`, every monitor due at one poll in one transaction): of
several uptime instances that saw the same due monitor, exactly one moves it and only that one runs the check of
that interval. The claim is in the database, so it survives restarts: a restarted instance finds the next due
time where the last claim left it. An instance that dies mid-check loses that interval's check; the next one is
claimed by whichever instance sees it first.

A monitor that lists `locations` is due at each of them on its own: the uptime instances of each location
claim it once per interval with the same compare-and-set on that location's due time, so every location checks
it every interval; an instance never claims a monitor that does not list its location.

A heartbeat monitor is due at its deadline: claiming it moves the deadline to the next expected run's
(`next_deadline_after_miss`, so an outage of the role yields one late outcome, not a backlog) and runs
`HeartbeatRecorder.late`, under the same compare-and-set; a ping moving the deadline meanwhile makes the claim
fail, so a heartbeat that pinged in time is never found late.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime

from mintlog.domain.heartbeat_schedule import next_deadline_after_miss
from mintlog.domain.monitors import Monitor
from mintlog.domain.uptime_checks import HeartbeatCheck
from mintlog.ports.uptime import CheckClaim, MonitorStore
from mintlog.roles.kit.scheduler import Claim, next_due
from mintlog.roles.uptime.checker import MonitorChecker
from mintlog.roles.uptime.heartbeats import HeartbeatRecorder

__all__ = ["DueMonitors"]


class DueMonitors:
    """`DueWorkSource` of uptime checks: one claim per monitor and interval across every instance."""

    def __init__(
        self, monitors: MonitorStore, checker: MonitorChecker, heartbeats: HeartbeatRecorder, *, location: str
    ) -> None:
        self._monitors = monitors
        self._location = location
        self._checker = checker
        self._heartbeats = heartbeats

    async def claim_due(self, now: datetime, limit: int, *, running: Set[str]) -> Sequence[Claim[Monitor]]:
        """Claim up to `limit` due monitors not in `running`; each is due again one interval later."""
        due = await self._monitors.due_monitors(now, limit=limit + len(running), location=self._location)
        candidates = [monitor for monitor in due if monitor.id not in running][:limit]
        wanted = [
            CheckClaim(
                monitor.id,
                seen=monitor.next_check_at,
                next_at=_next_due(monitor, now),
                location=self._location if monitor.spec.locations else None,
            )
            for monitor in candidates
        ]
        won = await self._monitors.claim_checks(wanted)
        return [
            Claim(monitor.id, monitor, due_at=monitor.next_check_at, deadline=claim.next_at)
            for monitor, claim in zip(candidates, wanted, strict=True)
            if monitor.id in won
        ]

    async def run(self, item: Monitor) -> None:
        if isinstance(item.spec.check, HeartbeatCheck):
            await self._heartbeats.late(item)
        else:
            await self._checker.check(item)


def _next_due(monitor: Monitor, now: datetime) -> datetime:
    check = monitor.spec.check
    if isinstance(check, HeartbeatCheck):
        return next_deadline_after_miss(check.schedule, monitor.next_check_at, now)
    return next_due(monitor.next_check_at, monitor.spec.interval_seconds, now)
