"""`EscalationSteps`: runs the due tasks of escalation runs (a step, a person's later rule, an ack timeout).

Every notify instance runs a `DueWorkScheduler` over `escalation_tasks`; a task is claimed by exactly one
instance (`claim_due_tasks`) for `MINTLOG_ESCALATION__CLAIM_SECONDS`. Running a task:

1. reads the incident and the run: when the incident is acknowledged or resolved (or the run stopped, or the
   task belongs to an older cycle), nothing is sent, the run is stopped and the task is done;
2. a `step` fires: a timeline entry `escalation_step`, then each target (all of them, or the one in turn of a
   round-robin step): a channel gets a signed `incident.escalated` webhook through the channel deliveries; a
   person is notified by each of their notification rules with `after_minutes` 0 through the `PersonNotifier`
   (each later rule becomes a `person_rule` task); a schedule's target is whoever `OnCallDirectory` says is
   on call at the step's due time, notified as a person. Each notification is a `notified` entry, each target
   that cannot be reached a `notification_failed` entry;
3. the task is marked done together with the insert of the next step (its delay after this one's due time),
   while this instance still owns the claim.

Exactly once: the claim makes one instance run a task; a run cut short (crash, kill -9) leaves the task
pending and its claim expires, so another instance runs it again. That re-run sends nothing twice: deliveries
have ids derived from the task and channel, person notifications carry `dedup_key` (incident, run and cycle,
step, repetition, person, contact method), timeline entries have ids derived from the task, and the next
step's id is derived from it too. So a restart neither skips (the task stays pending until done) nor repeats
a step. An acknowledgement committed before a step's incident read stops it; one committed while a step is
sending lets that step finish its sends (never a later step).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from mintlog.domain.action_links import LinkAction, make_token
from mintlog.domain.channels import Delivery
from mintlog.domain.escalation import (
    EscalationRun,
    EscalationTask,
    StepTarget,
    dedup_key,
    first_step_task,
    next_step_task,
    person_rule_task,
    step_targets,
)
from mintlog.domain.escalation_messages import ESCALATED_EVENT_TYPE, EscalationNotice, entry_id, escalation_payload
from mintlog.domain.incidents import SYSTEM_ACTOR, EntryDraft, Incident, TimelineEventType
from mintlog.domain.oncall_people import Person
from mintlog.domain.webhooks import delivery_id
from mintlog.errors import Conflict
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.incidents import IncidentStore
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.oncall import OnCallDirectory
from mintlog.ports.person_notify import PersonMessage, PersonNotifier
from mintlog.roles.kit.link_keys import LinkKeys
from mintlog.roles.kit.scheduler import Claim
from mintlog.settings import EscalationSettings

__all__ = ["DueEscalationTasks", "EscalationSteps", "StepPorts"]

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StepPorts:
    """What running a step needs. `directory` and `notifier` may be None until people are wired: a person or
    schedule target is then a `notification_failed` entry naming the reason."""

    escalation: EscalationStore
    incidents: IncidentStore
    notifications: NotificationStore
    directory: OnCallDirectory | None
    notifier: PersonNotifier | None


class EscalationSteps:
    """Runs claimed escalation tasks (see the module)."""

    def __init__(
        self,
        ports: StepPorts,
        settings: EscalationSettings,
        *,
        links: LinkKeys,
        holder: str,
        clock: Callable[[], datetime] = _utcnow,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._ports = ports
        self._settings = settings
        self._links = links
        self.holder = holder
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def run(self, task: EscalationTask) -> None:
        """Run one claimed task and mark it done (with its successors) while the claim is still ours."""
        ports = self._ports
        now = self._clock()
        incident = await ports.incidents.get_incident(task.tenant_id, task.incident_id)
        run = await ports.escalation.get_run(task.tenant_id, task.incident_id)
        next_tasks: list[EscalationTask] = []
        if incident is None or run is None or run.id != task.run_id or task.cycle != run.cycle:
            pass  # deleted, or an older cycle's task: void
        elif task.kind == "ack_timeout":
            await self._ack_timeout(task, incident, run, now)
        elif incident.status != "triggered" or run.status != "active":
            if run.status == "active":
                await self._stop(incident, run, now)
        elif task.kind == "step":
            next_tasks = await self._fire_step(task, incident, run, now)
        else:
            await self._person_rule(task, incident, run)
        if not await ports.escalation.complete_task(task.id, self.holder, next_tasks=next_tasks, now=now):
            logger.warning("escalation task %s: the claim expired before it was done; it runs again", task.id)

    async def _stop(self, incident: Incident, run: EscalationRun, now: datetime) -> None:
        reason = f"incident {incident.status}"
        if await self._ports.escalation.stop_run(
            incident.tenant_id, incident.id, reason=reason, at=now, keep_ack_timeout=incident.status != "resolved"
        ):
            await self._entry(
                incident, f"{run.id}.{run.cycle}:stopped", "escalation_stopped", f"escalation stopped: {reason}", now
            )

    async def _fire_step(
        self, task: EscalationTask, incident: Incident, run: EscalationRun, now: datetime
    ) -> list[EscalationTask]:
        step = run.policy.steps[task.step_index]
        targets = step_targets(step, cycle=task.cycle, repeat=task.repeat, repeats=run.policy.repeat)
        await self._task_entry(
            task,
            incident,
            "step",
            "escalation_step",
            f"escalation step {task.step_index + 1} (repetition {task.repeat}) of policy {run.policy.name!r}",
            {
                "policy_id": run.policy_id,
                "run_id": run.id,
                "step": task.step_index + 1,
                "repeat": task.repeat,
                "cycle": task.cycle,
                "targets": [{"type": target.type, "id": target.id} for target in targets],
            },
        )
        later: list[EscalationTask] = []
        for target in targets:
            later.extend(await self._notify_target(task, incident, run, target, now))
        following = next_step_task(run, task, now=now)
        if following is None:
            await self._task_entry(
                task, incident, "exhausted", "escalation_exhausted", "the last escalation step fired", {}
            )
        return [*later, *([] if following is None else [following])]

    async def _notify_target(
        self, task: EscalationTask, incident: Incident, run: EscalationRun, target: StepTarget, now: datetime
    ) -> list[EscalationTask]:
        if target.type == "channel":
            await self._notify_channel(task, incident, run, target.id, now)
            return []
        directory = self._ports.directory
        if directory is None:
            await self._failed(task, incident, target, "people and schedules are not available in this deployment")
            return []
        if target.type == "person":
            person = await directory.get_person(incident.tenant_id, target.id)
            people = [] if person is None else [person]
            if person is None:
                await self._failed(task, incident, target, f"no person {target.id!r}")
        else:
            people = list(await directory.people_on_call(incident.tenant_id, target.id, task.due_at))
            if not people:
                await self._failed(task, incident, target, f"nobody is on call on schedule {target.id!r}")
        later: list[EscalationTask] = []
        for person in people:
            later.extend(await self._notify_person(task, incident, person, target, now))
        return later

    async def _notify_person(
        self, task: EscalationTask, incident: Incident, person: Person, target: StepTarget, now: datetime
    ) -> list[EscalationTask]:
        later: list[EscalationTask] = []
        for rule in person.notification_rules:
            if rule.after_minutes > 0:
                later.append(
                    person_rule_task(
                        task,
                        person_id=person.id,
                        contact_method_id=rule.contact_method_id,
                        after_minutes=rule.after_minutes,
                        now=now,
                    )
                )
            else:
                await self._send_to_person(task, incident, person, rule.contact_method_id, target, now)
        return later

    async def _person_rule(self, task: EscalationTask, incident: Incident, run: EscalationRun) -> None:
        directory = self._ports.directory
        person_id = str(task.data.get("person_id", ""))
        target = StepTarget(type="person", id=person_id)
        person = None if directory is None else await directory.get_person(incident.tenant_id, person_id)
        if person is None:
            await self._failed(task, incident, target, f"no person {person_id!r}")
            return
        await self._send_to_person(
            task, incident, person, str(task.data.get("contact_method_id", "")), target, self._clock()
        )

    async def _send_to_person(
        self,
        task: EscalationTask,
        incident: Incident,
        person: Person,
        contact_method_id: str,
        target: StepTarget,
        now: datetime,
    ) -> None:
        notifier = self._ports.notifier
        method = next((method for method in person.contact_methods if method.id == contact_method_id), None)
        if notifier is None or method is None:
            reason = "person notifications are not available" if notifier is None else "no such contact method"
            await self._failed(task, incident, target, f"{reason} ({person.id}/{contact_method_id})")
            return
        subject = f"person:{person.id}"
        message = PersonMessage(
            incident_id=incident.id,
            title=incident.title,
            severity=incident.severity,
            source=incident.rule_id or "manual",
            summary=(incident.description or "")[:500],
            acknowledge_url=await self._link(incident, subject, "acknowledge", now),
            resolve_url=await self._link(incident, subject, "resolve", now),
            incident_url=self._incident_url(incident),
            triggered_at=incident.created_at,
        )
        key = dedup_key(task, person.id, method.id)
        notification_id = await notifier.notify(incident.tenant_id, person, method, message, dedup_key=key)
        await self._task_entry(
            task,
            incident,
            f"notified:{person.id}:{method.id}",
            "notified",
            f"notified {person.name} by {method.type}",
            {
                "target": {"type": target.type, "id": target.id},
                "person_id": person.id,
                "contact_method_id": method.id,
                "contact_method_type": method.type,
                "delivery_id": notification_id,
                "dedup_key": key,
            },
        )

    async def _notify_channel(
        self, task: EscalationTask, incident: Incident, run: EscalationRun, channel_id: str, now: datetime
    ) -> None:
        notifications = self._ports.notifications
        target = StepTarget(type="channel", id=channel_id)
        if not await notifications.active_channel_ids(incident.tenant_id, [channel_id]):
            await self._failed(task, incident, target, f"channel {channel_id!r} is absent or inactive")
            return
        subject = f"channel:{channel_id}"
        notice = EscalationNotice(
            incident_id=incident.id,
            tenant_id=incident.tenant_id,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            policy_id=run.policy_id,
            run_id=run.id,
            step=task.step_index + 1,
            repeat=task.repeat,
            acknowledge_url=await self._link(incident, subject, "acknowledge", now),
            resolve_url=await self._link(incident, subject, "resolve", now),
            incident_url=self._incident_url(incident),
        )
        event_id = f"escalation:{task.id}"
        delivery = Delivery(
            id=delivery_id(event_id, channel_id),
            tenant_id=incident.tenant_id,
            channel_id=channel_id,
            event_id=event_id,
            event_type=ESCALATED_EVENT_TYPE,
            incident_id=incident.id,
            payload=escalation_payload(notice, at=now),
            status="pending",
            attempts=0,
            round_attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        if await notifications.enqueue_deliveries([delivery]):
            self._on_enqueued()
        await self._task_entry(
            task,
            incident,
            f"notified:channel:{channel_id}",
            "notified",
            f"notified channel {channel_id}",
            {"target": {"type": "channel", "id": channel_id}, "delivery_id": delivery.id},
        )

    async def _ack_timeout(self, task: EscalationTask, incident: Incident, run: EscalationRun, now: datetime) -> None:
        acknowledged_at = task.data.get("acknowledged_at")
        if incident.status != "acknowledged" or incident.acknowledged_at is None:
            return
        if incident.acknowledged_at.isoformat() != acknowledged_at:
            return  # a later acknowledgement has its own timeout
        draft = EntryDraft(
            id=entry_id(task, "retriggered"),
            source_id=entry_id(task, "retriggered"),
            occurred_at=now,
            event_type="retriggered",
            actor=SYSTEM_ACTOR,
            content=f"not resolved {run.policy.ack_timeout_minutes} minutes after its acknowledgement: triggered again",
            notify=True,
        )
        try:
            applied = await self._ports.incidents.change_status(incident.tenant_id, incident.id, "triggered", draft)
        except Conflict:
            return  # resolved meanwhile, or re-triggered by another run of this task
        if applied is None:
            return
        restarted = msgspec.structs.replace(run, cycle=run.cycle + 1, status="active")
        await self._ports.escalation.retrigger_run(
            incident.tenant_id, incident.id, at=now, first=first_step_task(restarted, now=now)
        )

    # Timeline

    async def _failed(self, task: EscalationTask, incident: Incident, target: StepTarget, reason: str) -> None:
        logger.warning("escalation task %s: %s %s not notified: %s", task.id, target.type, target.id, reason)
        await self._task_entry(
            task,
            incident,
            f"failed:{target.type}:{target.id}",
            "notification_failed",
            f"{target.type} {target.id} not notified: {reason}",
            {"target": {"type": target.type, "id": target.id}, "reason": reason},
        )

    async def _task_entry(
        self,
        task: EscalationTask,
        incident: Incident,
        part: str,
        event_type: TimelineEventType,
        content: str,
        data: dict[str, object],
    ) -> None:
        await self._entry(incident, f"{task.id}:{part}", event_type, content, self._clock(), data)

    async def _entry(
        self,
        incident: Incident,
        source: str,
        event_type: TimelineEventType,
        content: str,
        at: datetime,
        data: dict[str, object] | None = None,
    ) -> None:
        entry_key = "tle_" + hashlib.sha256(source.encode()).hexdigest()[:24]
        draft = EntryDraft(
            id=entry_key,
            source_id=entry_key,
            occurred_at=at,
            event_type=event_type,
            actor=SYSTEM_ACTOR,
            content=content,
            data=data,
        )
        with contextlib.suppress(Conflict):  # written by an earlier run of this task
            await self._ports.incidents.append_entry(incident.tenant_id, incident.id, draft)

    # Links

    async def _link(self, incident: Incident, subject: str, action: LinkAction, now: datetime) -> str:
        token = make_token(
            await self._links.key(),
            tenant_id=incident.tenant_id,
            incident_id=incident.id,
            subject=subject,
            action=action,
            now=now,
            ttl=timedelta(hours=self._settings.link_ttl_hours),
        )
        return f"{self._settings.public_url.rstrip('/')}/oncall/actions/{token}"

    def _incident_url(self, incident: Incident) -> str:
        return f"{self._settings.public_url.rstrip('/')}/v1/incidents/{incident.id}"


class DueEscalationTasks:
    """The scheduler's source: tasks claimed in the database for `claim_seconds`."""

    def __init__(self, store: EscalationStore, steps: EscalationSteps, claim_seconds: float) -> None:
        self._store = store
        self._steps = steps
        self._claim = timedelta(seconds=claim_seconds)

    async def claim_due(self, now: datetime, limit: int, *, running: Set[str]) -> Sequence[Claim[EscalationTask]]:
        claimed = await self._store.claim_due_tasks(self._steps.holder, now=now, until=now + self._claim, limit=limit)
        return [Claim(task.id, task, due_at=task.due_at, deadline=task.claim_expires_at) for task in claimed]

    async def run(self, item: EscalationTask) -> None:
        await self._steps.run(item)
