"""One run of one monitor's check: probe, confirm, record, publish.

Order and guarantees:
1. the probe runs (`Prober.run`, which never raises for what the target does); the result keeps when the check
   was due (the claimed `next_check_at`) and when the probe started, so how late checks start is measurable;
2. the confirmation state machine (`mintlog.domain.monitor_maintenance.apply_check`, around
   `mintlog.domain.monitors.apply_outcome`) gives the new status: inside a maintenance window of the monitor
   (`MaintenanceLookup`) the result is recorded and published with `in_maintenance`, and confirms nothing;
3. a `down` transition gets its context (the failing check, the linked service's logs: `log_summary`);
4. the result, the status, the state change and the transition's alert event (in the alert outbox) are
   committed in one transaction, the status only when nobody paused or edited the monitor meanwhile (its
   `transition_seq` unchanged); otherwise only the result is kept and nothing is published for a transition;
5. the result (and the state change) are published as log events, then the outbox relay publishes the alert
   event (`outbox.AlertRelay`); when that fails, or the process dies first, the relay's sweep publishes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

import msgspec

from mintlog.domain.monitor_maintenance import apply_check
from mintlog.domain.monitor_quorum import apply_quorum
from mintlog.domain.monitors import Monitor, MonitorStatus, Transition
from mintlog.domain.streams import raw_subject
from mintlog.domain.uptime_checks import CheckOutcome, CheckSpec
from mintlog.errors import DependencyUnavailable
from mintlog.ports.bus import EventBus
from mintlog.ports.logstore import LogStore
from mintlog.ports.uptime import CheckResult, LocatedDecision, MonitorStore, StateChangeRecord
from mintlog.roles.uptime.events import alert_event, log_batch, log_batch_id
from mintlog.roles.uptime.log_summary import failure_context
from mintlog.roles.uptime.maintenance import MaintenanceLookup
from mintlog.roles.uptime.outbox import AlertRelay

__all__ = ["CheckProber", "MonitorChecker"]

logger = logging.getLogger(__name__)


class CheckProber(Protocol):
    """What runs a check (`mintlog.adapters.probes.Prober`; a fake in tests)."""

    async def run(self, spec: CheckSpec, *, timeout_seconds: float) -> CheckOutcome:
        """The outcome of one run of `spec`; never raises for what the target does."""
        ...


class MonitorChecker:
    """Runs claimed checks and records and publishes what they found."""

    def __init__(
        self,
        *,
        monitors: MonitorStore,
        bus: EventBus,
        prober: CheckProber,
        maintenance: MaintenanceLookup,
        location: str,
        clock: Callable[[], datetime],
        relay: AlertRelay,
        store: LogStore,
        log_summary_timeout_seconds: float,
    ) -> None:
        self._monitors = monitors
        self._maintenance = maintenance
        self._bus = bus
        self._relay = relay
        self._store = store
        self._log_summary_timeout = log_summary_timeout_seconds
        self._prober = prober
        self._location = location
        self._clock = clock

    async def check(self, monitor: Monitor) -> CheckResult:
        """Run `monitor`'s check once and record and publish the result; returns it."""
        spec = monitor.spec
        started_at = self._clock()
        outcome = await self._prober.run(spec.check, timeout_seconds=spec.timeout_seconds)
        at = self._clock()
        in_maintenance = await self._maintenance.window_for(monitor, at) is not None
        if spec.locations:
            return await self._check_located(
                monitor, outcome, at=at, started_at=started_at, in_maintenance=in_maintenance
            )
        status, transition = apply_check(
            monitor.status,
            in_maintenance=in_maintenance,
            ok=outcome.ok,
            at=at,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            down_after=spec.down_after,
            up_after=spec.up_after,
            confirmation=spec.confirmation,
        )
        result = CheckResult(
            id=log_batch_id(monitor.id, at),
            monitor_id=monitor.id,
            tenant_id=monitor.tenant_id,
            at=at,
            location=self._location,
            ok=outcome.ok,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            status_code=outcome.status_code,
            in_maintenance=in_maintenance,
            due_at=monitor.next_check_at,
            started_at=started_at,
        )
        change = None if transition is None else StateChangeRecord(monitor_id=monitor.id, at=at, state=status.state)
        event = None
        if transition is not None:
            context = None
            if transition.current == "down":
                context = await failure_context(
                    monitor,
                    outcome,
                    at=at,
                    location=self._location,
                    store=self._store,
                    timeout_seconds=self._log_summary_timeout,
                )
            first_failure = at - timedelta(seconds=spec.interval_seconds * max(0, spec.down_after - 1))
            event = alert_event(
                monitor, transition, outcome, location=self._location, window_start=first_failure, context=context
            )
        recorded = await self._monitors.record_check(
            monitor.id, result, status, expected_seq=monitor.status.transition_seq, change=change, alert=event
        )
        if not recorded:
            logger.info("monitor %s changed while its check ran; its status is left as it is now", monitor.id)
            transition, event = None, None
        await self._publish(monitor, outcome, result, transition, alerted=event is not None)
        return result

    async def _check_located(
        self, monitor: Monitor, outcome: CheckOutcome, *, at: datetime, started_at: datetime, in_maintenance: bool
    ) -> CheckResult:
        """A monitor with `locations`: this location confirms its own state, then the quorum of every location's
        state decides the monitor's (`mintlog.domain.monitor_quorum`), in the store's transaction."""
        spec = monitor.spec
        locations = spec.locations or []
        here = self._location
        location_status, _ = apply_check(
            monitor.location_states.get(here, MonitorStatus()),
            in_maintenance=in_maintenance,
            ok=outcome.ok,
            at=at,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            down_after=spec.down_after,
            up_after=spec.up_after,
            confirmation=spec.confirmation,
        )
        quorum = monitor.required_down()
        result = CheckResult(
            id=log_batch_id(f"{monitor.id}@{here}", at),
            monitor_id=monitor.id,
            tenant_id=monitor.tenant_id,
            at=at,
            location=here,
            ok=outcome.ok,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            status_code=outcome.status_code,
            in_maintenance=in_maintenance,
            due_at=monitor.next_check_at,
            started_at=started_at,
        )
        # The incident's context is gathered before the transaction, when this result is likely to take the
        # monitor down on the states read with the claim (the decision itself is made on the fresh ones).
        predicted, _ = apply_quorum(
            monitor.status,
            {**monitor.location_states, here: location_status},
            reporting=here,
            locations=locations,
            quorum=quorum,
            at=at,
        )
        context = None
        if predicted.state == "down" and monitor.status.state != "down":
            context = await failure_context(
                monitor, outcome, at=at, location=here, store=self._store, timeout_seconds=self._log_summary_timeout
            )

        def decide(overall: MonitorStatus, states: Mapping[str, MonitorStatus]) -> LocatedDecision:
            status, transition = apply_quorum(
                overall, states, reporting=here, locations=locations, quorum=quorum, at=at
            )
            if transition is None:
                return LocatedDecision(status=status, change=None, alert=None)
            first_failure = at - timedelta(seconds=spec.interval_seconds * max(0, spec.down_after - 1))
            event = alert_event(
                monitor,
                transition,
                outcome,
                location=here,
                window_start=first_failure,
                context=context if transition.current == "down" else None,
            )
            if event is not None and transition.current == "down":
                down_at = sorted(name for name in locations if name in states and states[name].state == "down")
                message = (
                    f"{spec.name} is down at {len(down_at)} of {len(locations)} locations ({', '.join(down_at)}; "
                    f"quorum {quorum}): {outcome.error or 'unexpected answer'} (last from {here})"
                )
                event = msgspec.structs.replace(event, message=message)
            decided[0] = transition
            change = StateChangeRecord(monitor_id=monitor.id, at=at, state=status.state)
            return LocatedDecision(status=status, change=change, alert=event)

        decided: list[Transition | None] = [None]
        decision = await self._monitors.record_location_check(
            monitor.id, result, location_status, expected_seq=monitor.status.transition_seq, decide=decide
        )
        if decision is None:
            logger.info("monitor %s changed while its check ran at %s; its status is left as it is", monitor.id, here)
            decided[0] = None
        alerted = decision is not None and decision.alert is not None
        await self._publish(monitor, outcome, result, decided[0], alerted=alerted)
        return result

    async def _publish(
        self,
        monitor: Monitor,
        outcome: CheckOutcome,
        result: CheckResult,
        transition: Transition | None,
        *,
        alerted: bool,
    ) -> None:
        at, in_maintenance = result.at, result.in_maintenance
        batch_id, payload = log_batch(
            monitor, outcome, at=at, location=self._location, transition=transition, in_maintenance=in_maintenance
        )
        try:
            await self._bus.publish(raw_subject(monitor.tenant_id), payload, msg_id=f"{batch_id}:0")
        except DependencyUnavailable as exc:
            logger.warning("monitor %s: check recorded but its log events not published: %s", monitor.id, exc)
        if transition is not None:
            logger.info("monitor %s: %s -> %s", monitor.id, transition.previous, transition.current)
        if alerted:
            await self._relay.publish_monitor(monitor.id)
