"""`EscalationStarter`: starts and stops escalation runs from incident events.

It reads `INCIDENTS_EVENTS` through the durable consumer `notify-escalation`, shared by every notify instance:
- `incident.triggered` (not silenced) starts the incident's run with the policy it names, else its alert rule's
  or monitor's, else the first of the tenant's routes matching its severity and labels, else the tenant's
  default; none → no escalation. The `escalation_started` entry says which (`data.chosen_by`). The run
  snapshots the policy and its first step is a due task (`start_run` writes both once per incident, so a
  redelivery starts nothing twice);
- `incident.acknowledged` stops the run's pending steps and, when the policy has `ack_timeout_minutes`,
  schedules the re-trigger check; `incident.resolved` stops everything.
Steps themselves never depend on this consumer to stop: each reads the incident's status before sending.
A message is acked after its writes; a database failure naks it for a retry.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.escalation import (
    EscalationPolicy,
    EscalationRun,
    ack_timeout_task,
    first_step_task,
    new_run_id,
)
from mintlog.domain.incidents import SYSTEM_ACTOR, EntryDraft, Incident
from mintlog.domain.oncall_routes import RouteError, compile_routes, first_match
from mintlog.domain.streams import INCIDENTS_EVENTS, INCIDENTS_FILTER, decode_incident_event
from mintlog.errors import Conflict, DependencyUnavailable
from mintlog.ports.alerting import AlertRuleStore
from mintlog.ports.bus import BusMessage, EventBus
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.incidents import IncidentStore
from mintlog.ports.uptime import MonitorStore
from mintlog.roles.kit.consumer import ConsumerLoop

__all__ = ["ESCALATION_CONSUMER", "ChosenPolicy", "EscalationStarter", "PolicySources"]

logger = logging.getLogger(__name__)

ESCALATION_CONSUMER = "notify-escalation"
_RETRY_DELAY_SECONDS = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ChosenPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The policy that escalates an incident and why: `chosen_by` is `incident`, `rule`, `monitor`, `route` (with
    the 0-based `route` index and its `route_name`) or `default`."""

    policy: EscalationPolicy
    chosen_by: str
    route: int | None = None
    route_name: str | None = None


class PolicySources:
    """Which policy escalates an incident: the one its source names (the incident, its rule or monitor), else
    the first of the tenant's routes that matches it, else the tenant's default."""

    def __init__(self, escalation: EscalationStore, rules: AlertRuleStore, monitors: MonitorStore) -> None:
        self._escalation = escalation
        self._rules = rules
        self._monitors = monitors

    async def choose(self, incident: Incident) -> ChosenPolicy | None:
        """The policy that escalates `incident` and why, or None."""
        tenant_id = incident.tenant_id
        named, chosen_by = incident.escalation_policy_id, "incident"
        monitor_id = incident.labels.get("monitor_id") if incident.labels.get("source") == "uptime" else None
        if named is None and monitor_id is not None:
            monitor = await self._monitors.get_monitor(tenant_id, monitor_id)
            named, chosen_by = (None if monitor is None else monitor.spec.escalation_policy_id), "monitor"
        elif named is None and incident.rule_id is not None:
            rule = await self._rules.get_rule(tenant_id, incident.rule_id)
            named, chosen_by = (None if rule is None else rule.spec.escalation_policy_id), "rule"
        if named is not None:
            policy = await self._escalation.get_policy(tenant_id, named)
            if policy is not None:
                return ChosenPolicy(policy=policy, chosen_by=chosen_by)
            logger.warning(
                "incident %s names escalation policy %s, which is gone: routes and the default are used",
                incident.id,
                named,
            )
        routed = await self._routed(incident)
        if routed is not None:
            return routed
        default = await self._escalation.default_policy(tenant_id)
        return None if default is None else ChosenPolicy(policy=default, chosen_by="default")

    async def _routed(self, incident: Incident) -> ChosenPolicy | None:
        table = await self._escalation.get_routes(incident.tenant_id)
        if table is None or not table.routes:
            return None
        try:
            routes = compile_routes(table.routes, probe=False)  # probed when they were stored
        except RouteError as exc:  # stored routes were checked when written; a newer check may refuse them
            logger.warning("tenant %s: its routes are not used: %s: %s", incident.tenant_id, exc.field, exc.detail)
            return None
        remaining = routes
        while remaining:
            route = first_match(remaining, incident.severity, incident.labels)
            if route is None:
                return None
            policy = await self._escalation.get_policy(incident.tenant_id, route.spec.policy_id)
            if policy is not None:
                return ChosenPolicy(policy=policy, chosen_by="route", route=route.index, route_name=route.spec.name)
            logger.warning(
                "incident %s matches route %d, whose escalation policy %s is gone: the next route is tried",
                incident.id,
                route.index,
                route.spec.policy_id,
            )
            remaining = [later for later in remaining if later.index > route.index]
        return None


def _why(chosen: ChosenPolicy) -> str:
    if chosen.chosen_by == "route":
        name = f" {chosen.route_name!r}" if chosen.route_name else ""
        return f"route {(chosen.route or 0) + 1}{name} matched"
    if chosen.chosen_by == "default":
        return "the tenant's default"
    return f"named by the {chosen.chosen_by}"


class EscalationStarter:
    """The `notify-escalation` consumer (see the module)."""

    name = "escalation-starter"

    def __init__(
        self,
        *,
        bus: EventBus,
        escalation: EscalationStore,
        incidents: IncidentStore,
        policies: PolicySources,
        ack_wait_seconds: float,
        clock: Callable[[], datetime] = _utcnow,
        on_started: Callable[[], None] = lambda: None,
    ) -> None:
        self._escalation = escalation
        self._incidents = incidents
        self._policies = policies
        self._clock = clock
        self._on_started = on_started
        self._loop = ConsumerLoop(
            name=ESCALATION_CONSUMER,
            bus=bus,
            stream=INCIDENTS_EVENTS.name,
            durable=ESCALATION_CONSUMER,
            filter_subject=INCIDENTS_FILTER,
            ack_wait_seconds=ack_wait_seconds,
            fetch_batch=32,
            handle=self._handle_all,
        )

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self, grace_seconds: float) -> None:
        await self._loop.stop(grace_seconds)

    async def _handle_all(self, messages: list[BusMessage]) -> None:
        for message in messages:
            try:
                event = decode_incident_event(message.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                await message.ack()  # the delivery worker dead-letters it; nothing to escalate
                continue
            try:
                await self.apply(event)
            except DependencyUnavailable as exc:
                logger.warning("escalation of incident event %s postponed: %s", event.id, exc)
                with contextlib.suppress(Exception):
                    await message.nak(_RETRY_DELAY_SECONDS)
                continue
            except Exception:
                logger.exception("escalation of incident event %s failed; it is redelivered", event.id)
                with contextlib.suppress(Exception):
                    await message.nak(_RETRY_DELAY_SECONDS)
                continue
            await message.ack()

    async def apply(self, event: IncidentEvent) -> None:
        """What one incident event does to its escalation (idempotent)."""
        if event.type == "incident.triggered" and event.silenced_by is None:
            await self._start(event)
        elif event.type == "incident.acknowledged":
            await self._acknowledged(event)
        elif event.type == "incident.resolved":
            await self._stop(event, "incident resolved", keep_ack_timeout=False)

    async def _stop(self, event: IncidentEvent, reason: str, *, keep_ack_timeout: bool) -> None:
        """Stop the run and record it on the timeline (once: only the call that stopped an active run writes)."""
        if not await self._escalation.stop_run(
            event.tenant_id, event.incident_id, reason=reason, at=event.occurred_at, keep_ack_timeout=keep_ack_timeout
        ):
            return
        entry = EntryDraft(
            id=f"tle_stop{event.id[4:]}"[:40],
            source_id=f"escalation-stop:{event.id}",
            occurred_at=self._clock(),
            event_type="escalation_stopped",
            actor=event.actor,
            content=f"escalation stopped: {reason}",
        )
        with contextlib.suppress(Conflict):
            await self._incidents.append_entry(event.tenant_id, event.incident_id, entry)

    async def _start(self, event: IncidentEvent) -> None:
        incident = await self._incidents.get_incident(event.tenant_id, event.incident_id)
        if incident is None or incident.status != "triggered":
            return
        chosen = await self._policies.choose(incident)
        if chosen is None:
            return
        policy = chosen.policy
        now = self._clock()
        run = EscalationRun(
            id=new_run_id(incident.id),
            tenant_id=incident.tenant_id,
            incident_id=incident.id,
            policy_id=policy.id,
            policy=policy.spec,
            status="active",
            cycle=0,
            started_at=now,
            updated_at=now,
        )
        if not await self._escalation.start_run(run, first_step_task(run, now=event.occurred_at)):
            return
        self._on_started()
        entry = EntryDraft(
            id=f"tle_{run.id[4:]}",
            source_id=f"tle_{run.id[4:]}",
            occurred_at=now,
            event_type="escalation_started",
            actor=SYSTEM_ACTOR,
            content=f"escalation policy {policy.spec.name!r} started ({_why(chosen)})",
            data={
                "policy_id": policy.id,
                "run_id": run.id,
                "steps": len(policy.spec.steps),
                "chosen_by": chosen.chosen_by,
                **({"route": chosen.route} if chosen.route is not None else {}),
            },
        )
        with contextlib.suppress(Conflict):
            await self._incidents.append_entry(incident.tenant_id, incident.id, entry)
        logger.info("incident %s: escalation policy %s started (run %s)", incident.id, policy.id, run.id)

    async def _acknowledged(self, event: IncidentEvent) -> None:
        run = await self._escalation.get_run(event.tenant_id, event.incident_id)
        if run is None:
            return
        await self._stop(event, "incident acknowledged", keep_ack_timeout=True)
        minutes = run.policy.ack_timeout_minutes
        incident = await self._incidents.get_incident(event.tenant_id, event.incident_id)
        if minutes is None or incident is None or incident.acknowledged_at is None:
            return
        await self._escalation.add_tasks(
            [ack_timeout_task(run, acknowledged_at=incident.acknowledged_at, minutes=minutes)], now=self._clock()
        )
        self._on_started()
