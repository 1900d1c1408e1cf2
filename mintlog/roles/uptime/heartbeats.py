"""Heartbeat monitors in the uptime role: what a ping does, and what a missed deadline does.

Both end in the same path as a probed check (`mintlog.roles.uptime.checker`): the confirmation state machine
(`apply_outcome`, so `down_after`/`up_after` hold), a result in the monitor's history, log events, and the alert
event of a confirmed transition (one incident per monitor, resolved when it is up again).

Guarantees:
- a `start` ping records the start (the next success or failure measures the run from it) and judges nothing;
  a success ping is an ok outcome, a `fail` ping or a non-zero exit status a failed one, at once; either moves
  the deadline on from the ping (`mintlog.domain.heartbeats.apply_ping`);
- a paused monitor's pings are published as log events (`fields.paused: true`) and change nothing;
- a ping is stored in one transaction with the status it caused, only if nobody changed the monitor's status
  meanwhile (a pause, a late outcome that confirmed a transition): `record` then raises `PingRetry` and the
  consumer retries the ping on the fresh state. A redelivered ping that was stored already is not applied twice
  (its result id is taken), its log events are published again under the same message id (dropped by the bus);
- inside a maintenance window of the monitor (`MaintenanceLookup`) a ping's outcome or a missed deadline is
  recorded with `in_maintenance` and confirms nothing (`mintlog.domain.monitor_maintenance.apply_check`): a
  heartbeat late during a window does not go down and opens no incident, and those results are left out of the SLA;
- a deadline that passes with no ping ending a run is one failed outcome "late: no ping since …"
  (`late`, run by the due-work scheduler that claimed the deadline exactly once across instances);
- a confirmed transition's alert event is stored in the alert outbox in the same transaction as the status and
  published by the relay (`mintlog.roles.uptime.outbox`), so a bus outage or a crash at that moment delays the
  incident change and never loses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import msgspec

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.heartbeats import HeartbeatPing, HeartbeatState, apply_ping, late_error
from mintlog.domain.monitor_maintenance import apply_check
from mintlog.domain.monitors import Monitor, Transition
from mintlog.domain.streams import raw_subject
from mintlog.domain.uptime_checks import CheckOutcome, HeartbeatCheck
from mintlog.errors import Conflict, DependencyUnavailable
from mintlog.ports.bus import EventBus
from mintlog.ports.uptime import CheckResult, MonitorStore, StateChangeRecord
from mintlog.roles.uptime.events import alert_event, log_batch, log_batch_id
from mintlog.roles.uptime.heartbeat_events import ping_log_batch
from mintlog.roles.uptime.maintenance import MaintenanceLookup
from mintlog.roles.uptime.outbox import AlertRelay

__all__ = ["HeartbeatRecorder", "PingRetry"]

logger = logging.getLogger(__name__)


class PingRetry(Exception):
    """The monitor's status moved while the ping was applied: apply it again on the fresh state."""


class HeartbeatRecorder:
    """Records heartbeat pings and missed deadlines, and publishes what they changed."""

    def __init__(
        self,
        *,
        monitors: MonitorStore,
        bus: EventBus,
        relay: AlertRelay,
        maintenance: MaintenanceLookup,
        location: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._relay = relay
        self._maintenance = maintenance
        self._monitors = monitors
        self._bus = bus
        self._location = location
        self._clock = clock

    async def record(self, ping: HeartbeatPing) -> None:
        """Apply `ping` to its monitor (see the module docstring); nothing for a monitor deleted or no longer a
        heartbeat. Raises `PingRetry` when it must be applied again, `DependencyUnavailable` when the database
        is down."""
        monitor = await self._monitors.get_monitor(ping.tenant_id, ping.monitor_id)
        if monitor is None or not isinstance(monitor.spec.check, HeartbeatCheck):
            logger.info("ping %s for monitor %s dropped: no such heartbeat now", ping.id, ping.monitor_id)
            return
        if monitor.spec.paused:
            await self._publish_ping(monitor, ping, ok=None, error=None, duration=None, transition=None)
            return
        effect = apply_ping(monitor.heartbeat or HeartbeatState(), ping, monitor.spec.check.schedule)
        seq = monitor.status.transition_seq
        if effect.ok is None:
            if not await self._monitors.record_ping(monitor.id, heartbeat=effect.state, expected_seq=seq):
                raise PingRetry(monitor.id)
            await self._publish_ping(monitor, ping, ok=None, error=None, duration=None, transition=None)
            return
        at = ping.received_at
        latency_ms = None if effect.duration_seconds is None else effect.duration_seconds * 1000
        in_maintenance = await self._maintenance.window_for(monitor, at) is not None
        status, transition = apply_check(
            monitor.status,
            in_maintenance=in_maintenance,
            ok=effect.ok,
            at=at,
            latency_ms=latency_ms,
            error=effect.error,
            down_after=monitor.spec.down_after,
            up_after=monitor.spec.up_after,
            confirmation=monitor.spec.confirmation,
        )
        result = self._result(
            monitor, at, ok=effect.ok, latency_ms=latency_ms, error=effect.error, in_maintenance=in_maintenance
        )
        change = None if transition is None else StateChangeRecord(monitor_id=monitor.id, at=at, state=status.state)
        outcome = CheckOutcome(ok=effect.ok, latency_ms=latency_ms or 0.0, error=effect.error)
        event = None if transition is None else self._alert(monitor, transition, outcome)
        try:
            recorded = await self._monitors.record_ping(
                monitor.id,
                heartbeat=effect.state,
                expected_seq=seq,
                next_check_at=effect.next_deadline,
                status=status,
                result=result,
                change=change,
                alert=event,
            )
        except Conflict:
            logger.info("ping %s of monitor %s was recorded already", ping.id, monitor.id)
            recorded, transition = True, None
        if not recorded:
            raise PingRetry(monitor.id)
        await self._publish_ping(
            monitor, ping, ok=effect.ok, error=effect.error, duration=effect.duration_seconds, transition=transition
        )
        if transition is not None:
            await self._relay.publish_monitor(monitor.id)

    async def late(self, monitor: Monitor) -> CheckResult:
        """One failed outcome for `monitor`'s deadline (`next_check_at` as claimed) passing with no ping."""
        at = self._clock()
        error = late_error(monitor.heartbeat, monitor.status.since or monitor.created_at)
        in_maintenance = await self._maintenance.window_for(monitor, at) is not None
        status, transition = apply_check(
            monitor.status,
            in_maintenance=in_maintenance,
            ok=False,
            at=at,
            latency_ms=None,
            error=error,
            down_after=monitor.spec.down_after,
            up_after=monitor.spec.up_after,
            confirmation=monitor.spec.confirmation,
        )
        result = self._result(monitor, at, ok=False, latency_ms=None, error=error, in_maintenance=in_maintenance)
        change = None if transition is None else StateChangeRecord(monitor_id=monitor.id, at=at, state=status.state)
        outcome = CheckOutcome(ok=False, latency_ms=0.0, error=error)
        event = None if transition is None else self._alert(monitor, transition, outcome)
        recorded = await self._monitors.record_check(
            monitor.id, result, status, expected_seq=monitor.status.transition_seq, change=change, alert=event
        )
        if not recorded:
            logger.info("heartbeat %s changed while it was found late; its status is left as it is", monitor.id)
            transition = None
        batch_id, payload = log_batch(
            monitor, outcome, at=at, location=self._location, transition=transition, in_maintenance=in_maintenance
        )
        try:
            await self._bus.publish(raw_subject(monitor.tenant_id), payload, msg_id=f"{batch_id}:0")
        except DependencyUnavailable as exc:
            logger.warning("heartbeat %s: late outcome recorded but its log events not published: %s", monitor.id, exc)
        if transition is not None:
            await self._relay.publish_monitor(monitor.id)
        return result

    def _result(
        self,
        monitor: Monitor,
        at: datetime,
        *,
        ok: bool,
        latency_ms: float | None,
        error: str | None,
        in_maintenance: bool,
    ) -> CheckResult:
        return CheckResult(
            id=log_batch_id(monitor.id, at),
            monitor_id=monitor.id,
            tenant_id=monitor.tenant_id,
            at=at,
            location=self._location,
            ok=ok,
            latency_ms=latency_ms,
            error=error,
            in_maintenance=in_maintenance,
        )

    async def _publish_ping(
        self,
        monitor: Monitor,
        ping: HeartbeatPing,
        *,
        ok: bool | None,
        error: str | None,
        duration: float | None,
        transition: Transition | None,
    ) -> None:
        batch_id, payload = ping_log_batch(
            monitor, ping, ok=ok, error=error, duration_seconds=duration, location=self._location, transition=transition
        )
        # Raises DependencyUnavailable: the ping is then redelivered and its log event published again.
        await self._bus.publish(raw_subject(monitor.tenant_id), payload, msg_id=f"{batch_id}:0")

    def _alert(self, monitor: Monitor, transition: Transition, outcome: CheckOutcome) -> AlertEvent | None:
        """The transition's alert event (stored in the alert outbox with the status, published by the relay)."""
        logger.info("heartbeat %s: %s -> %s", monitor.id, transition.previous, transition.current)
        event = alert_event(monitor, transition, outcome, location=self._location, window_start=transition.at)
        if event is None:
            return None
        name = monitor.spec.name
        message = (
            f"{name} is down: {outcome.error} ({monitor.spec.down_after} failed heartbeat(s) in a row)"
            if event.state == "firing"
            else f"{name} is up again: the job pinged success"
        )
        return msgspec.structs.replace(event, message=message)
