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

Tasks run in batches (`run_batch`; `run` is a batch of one): the batch reads its incidents and runs in one
statement each and every active channel it names at once, asks a schedule who is on call once per due instant
(shared by the batches of this instance due at that instant), then stores all its channel deliveries and all
its person notifications, then all its timeline entries (each task's in its order, stamped after the
incident's last change) and completes all its tasks, each in one transaction. People first: entries and
completions wait until no batch of this instance is storing notifications (`_write`).
Acknowledgement timeouts and stops of acknowledged or resolved incidents are rare and run as they are met.

Ahead of time: tasks are claimed up to `MINTLOG_ESCALATION__LOOKAHEAD_SECONDS` before they are due and
prepared at once (reads, lookups at the due instant, messages); the tasks due by an instant are written
together no earlier than it, after their incidents and runs are checked again by version (a task whose
incident or run changed is read in full and prepared again; an acknowledgement timeout or a stop acts only once
due).

Exactly once: the claim makes one instance run a task; a run cut short (crash, kill -9) leaves the task
pending and its claim expires, so another instance runs it again. That re-run sends nothing twice: deliveries
have ids derived from the task and channel, person notifications carry `dedup_key` (incident, run and cycle,
step, repetition, person, contact method), timeline entries have ids derived from the task, and the next
step's id is derived from it too. So a restart neither skips (the task stays pending until done) nor repeats
a step. An acknowledgement committed before a step's incident read (for a task prepared ahead, the read at its
due time) stops it; one committed while a step is sending lets that step finish its sends (never a later step).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

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
from mintlog.errors import Conflict, DependencyUnavailable
from mintlog.ports.escalation import EscalationStore, RunVersion
from mintlog.ports.incidents import IncidentStore, IncidentVersion, NewEntry
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.oncall import OnCallDirectory
from mintlog.ports.person_notify import PersonMessage, PersonNotice, PersonNotifier
from mintlog.roles.kit.link_keys import LinkKeys
from mintlog.roles.kit.scheduler import Claim
from mintlog.settings import EscalationSettings

__all__ = ["DueEscalationTasks", "EscalationSteps", "StepPorts"]

logger = logging.getLogger(__name__)


_LOOKUPS_AT_ONCE = 8
"""On-call lookups and people one instance reads at once, across its batches (each holds a connection of the
read pool, which keeps as many open): 10 schedules due together take 2 round trips rather than 3."""
_SHARED_READ_SECONDS = 1.0
"""How long the batches of one instance share a person or an on-call lookup at one due instant."""
_SHARED_READS_KEPT = 1024
"""Shared reads kept before the expired ones are dropped."""
_Key = TypeVar("_Key")
_Value = TypeVar("_Value")

_Target = tuple[str, str, str, datetime]
"""(tenant id, target type, target id, due instant)."""


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


@dataclass(slots=True)
class _PlannedEntry:
    """A timeline entry of a task, stamped when the batch writes it (after its notifications are stored)."""

    source: str
    event_type: TimelineEventType
    content: str
    data: dict[str, object]


@dataclass(slots=True)
class _Plan:
    """What one task of a batch writes, gathered before anything is: its deliveries to channels, its
    notifications of people (each with the entry that records its delivery id), its entries in order, and the
    tasks that follow it."""

    task: EscalationTask
    incident: Incident | None = None
    run: EscalationRun | None = None
    deferred: bool = False
    deliveries: list[Delivery] = field(default_factory=list[Delivery])
    notices: list[tuple[PersonNotice, _PlannedEntry]] = field(default_factory=list[tuple[PersonNotice, _PlannedEntry]])
    entries: list[_PlannedEntry] = field(default_factory=list[_PlannedEntry])
    next_tasks: list[EscalationTask] = field(default_factory=list[EscalationTask])


class _SharedReads(Generic[_Key, _Value]):
    """Reads shared by the batches of one instance for `_SHARED_READ_SECONDS`, in flight or done: the 40 batches
    of 10,000 steps due at one instant ask who is on call at that instant once, not once each. Keys name the due
    instant, so a step due at another instant reads again. A failed read is not kept."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._reads: dict[_Key, tuple[float, asyncio.Future[_Value]]] = {}

    async def get(self, key: _Key, read: Callable[[], Awaitable[_Value]]) -> _Value:
        now = self._clock()
        found = self._reads.get(key)
        if found is None or found[0] <= now:
            if len(self._reads) >= _SHARED_READS_KEPT:
                self._reads = {kept: entry for kept, entry in self._reads.items() if entry[0] > now}
            found = (now + _SHARED_READ_SECONDS, asyncio.ensure_future(read()))
            self._reads[key] = found
        try:
            return await asyncio.shield(found[1])
        except Exception:
            if self._reads.get(key) is found:
                del self._reads[key]
            raise


class _Lookups:
    """The reads of one batch, each made once: active channels (per tenant, all at once), people, and who is on
    call on a schedule at an instant; people and on-call lookups also once across the batches of this instance
    (`_SharedReads`)."""

    def __init__(
        self,
        ports: StepPorts,
        people: _SharedReads[tuple[str, str, datetime], Person | None],
        on_call: _SharedReads[tuple[str, str, datetime], list[Person]],
        limit: asyncio.Semaphore,
    ) -> None:
        self._ports = ports
        self._shared_people = people
        self._shared_on_call = on_call
        self._limit = limit
        self._active_channels: dict[tuple[str, str], bool] = {}
        self._people: dict[tuple[str, str, datetime], Person | None] = {}
        self._on_call: dict[tuple[str, str, datetime], list[Person]] = {}

    async def read_channels(self, wanted: Iterable[tuple[str, str]]) -> None:
        by_tenant: dict[str, set[str]] = {}
        for tenant_id, channel_id in wanted:
            by_tenant.setdefault(tenant_id, set()).add(channel_id)
        for tenant_id, channel_ids in by_tenant.items():
            active = set(await self._ports.notifications.active_channel_ids(tenant_id, sorted(channel_ids)))
            for channel_id in channel_ids:
                self._active_channels[tenant_id, channel_id] = channel_id in active

    async def channel_active(self, tenant_id: str, channel_id: str) -> bool:
        if (tenant_id, channel_id) not in self._active_channels:
            await self.read_channels([(tenant_id, channel_id)])
        return self._active_channels[tenant_id, channel_id]

    async def read_people_and_schedules(self, directory: OnCallDirectory, wanted: Iterable[_Target]) -> None:
        """Read the people and on-call lookups of `wanted` (targets at due instants), a few at once."""

        async def read(target: _Target) -> None:
            tenant_id, target_type, target_id, at = target
            # A lookup that fails is not cached: the task that needs it tries it again while it is planned, and
            # fails alone (left pending) rather than failing the whole batch.
            with contextlib.suppress(Exception):
                if target_type == "person":
                    await self.person(directory, tenant_id, target_id, at)
                else:
                    await self.on_call(directory, tenant_id, target_id, at)

        await asyncio.gather(*(read(target) for target in dict.fromkeys(wanted)))

    async def person(self, directory: OnCallDirectory, tenant_id: str, person_id: str, at: datetime) -> Person | None:
        key = (tenant_id, person_id, at)
        if key not in self._people:

            async def read() -> Person | None:
                async with self._limit:
                    return await directory.get_person(tenant_id, person_id)

            self._people[key] = await self._shared_people.get(key, read)
        return self._people[key]

    async def on_call(self, directory: OnCallDirectory, tenant_id: str, schedule_id: str, at: datetime) -> list[Person]:
        key = (tenant_id, schedule_id, at)
        if key not in self._on_call:

            async def read() -> list[Person]:
                async with self._limit:
                    return list(await directory.people_on_call(tenant_id, schedule_id, at))

            self._on_call[key] = await self._shared_on_call.get(key, read)
        return self._on_call[key]


class EscalationSteps:
    """Runs claimed escalation tasks, alone or in batches (see the module)."""

    def __init__(
        self,
        ports: StepPorts,
        settings: EscalationSettings,
        *,
        links: LinkKeys,
        holder: str,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._ports = ports
        self._sleep = sleep
        self._settings = settings
        self._links = links
        self.holder = holder
        self._clock = clock
        self._on_enqueued = on_enqueued
        self._shared_people: _SharedReads[tuple[str, str, datetime], Person | None] = _SharedReads()
        self._shared_on_call: _SharedReads[tuple[str, str, datetime], list[Person]] = _SharedReads()
        self._lookups_at_once = asyncio.Semaphore(_LOOKUPS_AT_ONCE)
        self._planning = asyncio.Semaphore(settings.batches_running)
        self._writing = asyncio.Semaphore(settings.batches_running)
        self._finishing = asyncio.Semaphore(settings.batches_running)
        self._sending = 0
        self._nothing_to_send = asyncio.Event()
        self._nothing_to_send.set()

    async def run(self, task: EscalationTask) -> None:
        """Run one claimed task and mark it done (with its successors) while the claim is still ours."""
        await self.run_batch([task])

    async def run_batch(self, tasks: Sequence[EscalationTask]) -> None:
        """Run claimed tasks together and mark each done (with its successors) while its claim is still ours.

        Each task does what it would alone; the batch shares the reads (incidents, runs, channels, people,
        on-call lookups) and the writes (deliveries, notifications, timeline entries, completions), a few
        statements for the whole batch. A task whose planning fails is left pending (it runs again once its
        claim expires); the others go on.

        A task claimed ahead of its due time (`lookahead_seconds`) is planned at once, then written no earlier
        than its due time: the tasks due by then are written together, after their incidents and runs are checked
        again; a task whose incident or run changed meanwhile (acknowledged, resolved, edited) is planned again
        from what they are now, so an acknowledgement before the due time sends nothing.
        """
        async with self._planning:
            planned_at = self._clock()
            plans, lookups = await self._plan_all(tasks, planned_at)
        waiting = sorted(plans, key=lambda plan: plan.task.due_at)
        while waiting:
            now = self._clock()
            if waiting[0].task.due_at > now:
                await self._sleep((waiting[0].task.due_at - now).total_seconds())
                continue
            due = [plan for plan in waiting if plan.task.due_at <= now]
            waiting = waiting[len(due) :]
            await self._write(due, now, planned_at=planned_at, lookups=lookups)

    async def _plan_all(self, tasks: Sequence[EscalationTask], now: datetime) -> tuple[list[_Plan], _Lookups]:
        """Read what `tasks` need and plan each (a task due later is planned as of its due time)."""
        ports = self._ports
        incidents, runs = await self._read_state(tasks)
        lookups = _Lookups(ports, self._shared_people, self._shared_on_call, self._lookups_at_once)
        targets = list(_targets(tasks, incidents, runs))
        await lookups.read_channels(
            (tenant_id, target_id) for tenant_id, kind, target_id, _ in targets if kind == "channel"
        )
        if ports.directory is not None:
            await lookups.read_people_and_schedules(
                ports.directory, (target for target in targets if target[1] != "channel")
            )
        plans: list[_Plan] = []
        for task in tasks:
            key = (task.tenant_id, task.incident_id)
            plan = await self._plan_one(task, incidents.get(key), runs.get(key), lookups, max(now, task.due_at))
            if plan is not None:
                plans.append(plan)
        return plans, lookups

    async def _read_state(
        self, tasks: Sequence[EscalationTask]
    ) -> tuple[dict[tuple[str, str], Incident], dict[tuple[str, str], EscalationRun]]:
        ports = self._ports
        keys = list(dict.fromkeys((task.tenant_id, task.incident_id) for task in tasks))
        incidents = {
            (incident.tenant_id, incident.id): incident for incident in await ports.incidents.get_incidents(keys)
        }
        runs = {(run.tenant_id, run.incident_id): run for run in await ports.escalation.get_runs(keys)}
        return incidents, runs

    async def _plan_one(
        self,
        task: EscalationTask,
        incident: Incident | None,
        run: EscalationRun | None,
        lookups: _Lookups,
        now: datetime,
    ) -> _Plan | None:
        plan = _Plan(task, incident, run)
        try:
            await self._plan(plan, run, lookups, now)
        except DependencyUnavailable as exc:
            logger.warning("escalation task %s not done: %s", task.id, exc)
            return None
        except Exception:
            logger.exception("escalation task %s failed", task.id)
            return None
        return plan

    async def _replan_changed(self, plans: Sequence[_Plan], lookups: _Lookups) -> list[_Plan]:
        """`plans` made ahead of their due time, now due: each whose incident or run changed since (or whose
        work was left for its due time) is planned again from what they are now; the others stand. What changed
        is told by their versions (status and `updated_at`: two small reads), and only those are read again in
        full. The lookups (channels, people, who is on call at the due time) are those read when the batch was
        planned."""
        keys = [(plan.task.tenant_id, plan.task.incident_id) for plan in plans]
        incident_versions = await self._ports.incidents.incident_versions(keys)
        run_versions = await self._ports.escalation.run_versions(keys)
        current: list[_Plan] = []
        changed: list[_Plan] = []
        for plan, key in zip(plans, keys, strict=True):
            if not plan.deferred and _version_of(plan) == (incident_versions.get(key), run_versions.get(key)):
                current.append(plan)
            else:
                changed.append(plan)
        if changed:
            incidents, runs = await self._read_state([plan.task for plan in changed])
            for plan in changed:
                key = (plan.task.tenant_id, plan.task.incident_id)
                again = await self._plan_one(plan.task, incidents.get(key), runs.get(key), lookups, self._clock())
                if again is not None:
                    current.append(again)
        return current

    async def _plan(self, plan: _Plan, run: EscalationRun | None, lookups: _Lookups, now: datetime) -> None:
        task, incident = plan.task, plan.incident
        if incident is None or run is None or run.id != task.run_id or task.cycle != run.cycle:
            pass  # deleted, or an older cycle's task: void
        elif task.due_at > self._clock() and (
            task.kind == "ack_timeout" or incident.status != "triggered" or run.status != "active"
        ):
            plan.deferred = True  # what these do (re-trigger, stop) is done at the due time, not ahead
        elif task.kind == "ack_timeout":
            await self._ack_timeout(task, incident, run, now)
        elif incident.status != "triggered" or run.status != "active":
            if run.status == "active":
                await self._stop(incident, run, now)
        elif task.kind == "step":
            await self._plan_step(plan, incident, run, lookups, now)
        else:
            await self._plan_person_rule(plan, incident, lookups, now)

    async def _write(self, plans: Sequence[_Plan], now: datetime, *, planned_at: datetime, lookups: _Lookups) -> None:
        """Store the deliveries and notifications of `plans` (`_send`), then their entries, then complete their
        tasks (`_finish`): a crash between two of these leaves the tasks pending, and their re-run stores
        nothing twice. Plans made ahead of their due time are first checked against their incidents and runs as
        they are now (`_replan_changed`).

        People first: a batch finishes only once no batch of this instance is storing or waiting to store its
        notifications, so in a burst every notification is stored (and its delivery can start) before the
        timeline entries and completions of any batch are written. Those follow at once, well within the claims
        (at most `batches_held` batches wait), and the entries carry the instant their notifications were stored.
        """
        self._sending += 1
        self._nothing_to_send.clear()
        try:
            async with self._writing:
                early = [plan for plan in plans if plan.task.due_at > planned_at]
                if early:
                    plans = [plan for plan in plans if plan.task.due_at <= planned_at]
                    plans += await self._replan_changed(early, lookups)
                at = await self._send(plans)
        finally:
            self._sending -= 1
            if not self._sending:
                self._nothing_to_send.set()
        await self._nothing_to_send.wait()
        async with self._finishing:
            await self._finish(plans, at, now)

    async def _send(self, plans: Sequence[_Plan]) -> datetime:
        """Store the deliveries and notifications of `plans`; the instant they were stored."""
        deliveries = [delivery for plan in plans for delivery in plan.deliveries]
        notices = [notice for plan in plans for notice in plan.notices]
        await asyncio.gather(self._enqueue(deliveries), self._notify(notices))
        return self._clock()

    async def _finish(self, plans: Sequence[_Plan], at: datetime, now: datetime) -> None:
        """Write the entries of `plans` (stamped `at`, or after their incident's last change) and complete their
        tasks with the tasks that follow them, while this instance holds their claims."""
        ports = self._ports
        entries = [
            NewEntry(
                plan.incident.tenant_id,
                plan.incident.id,
                _draft(entry.source, entry.event_type, entry.content, at, entry.data),
            )
            for plan in plans
            if plan.incident is not None
            for entry in plan.entries
        ]
        if entries:
            await ports.incidents.append_entries(entries)
        done = await ports.escalation.complete_tasks(
            [(plan.task.id, plan.next_tasks) for plan in plans], self.holder, now=now
        )
        for plan in plans:
            if plan.task.id not in done:
                logger.warning("escalation task %s: the claim expired before it was done; it runs again", plan.task.id)

    async def _enqueue(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries and await self._ports.notifications.enqueue_deliveries(deliveries):
            self._on_enqueued()

    async def _notify(self, notices: Sequence[tuple[PersonNotice, _PlannedEntry]]) -> None:
        if not notices:
            return
        assert self._ports.notifier is not None, "a notice is planned only with a notifier"
        stored = await self._ports.notifier.notify_many([notice for notice, _ in notices])
        for (_, entry), notification_id in zip(notices, stored, strict=True):
            entry.data["delivery_id"] = notification_id

    async def _stop(self, incident: Incident, run: EscalationRun, now: datetime) -> None:
        reason = f"incident {incident.status}"
        if await self._ports.escalation.stop_run(
            incident.tenant_id, incident.id, reason=reason, at=now, keep_ack_timeout=incident.status != "resolved"
        ):
            await self._entry(
                incident, f"{run.id}.{run.cycle}:stopped", "escalation_stopped", f"escalation stopped: {reason}", now
            )

    async def _plan_step(
        self, plan: _Plan, incident: Incident, run: EscalationRun, lookups: _Lookups, now: datetime
    ) -> None:
        task = plan.task
        step = run.policy.steps[task.step_index]
        targets = step_targets(step, cycle=task.cycle, repeat=task.repeat, repeats=run.policy.repeat)
        _task_entry(
            plan,
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
        for target in targets:
            await self._plan_target(plan, incident, run, target, lookups, now)
        following = next_step_task(run, task, now=now)
        if following is None:
            _task_entry(plan, "exhausted", "escalation_exhausted", "the last escalation step fired", {})
        else:
            plan.next_tasks.append(following)

    async def _plan_target(
        self,
        plan: _Plan,
        incident: Incident,
        run: EscalationRun,
        target: StepTarget,
        lookups: _Lookups,
        now: datetime,
    ) -> None:
        if target.type == "channel":
            if await lookups.channel_active(incident.tenant_id, target.id):
                await self._plan_channel(plan, incident, run, target.id, now)
            else:
                _failed(plan, target, f"channel {target.id!r} is absent or inactive")
            return
        directory = self._ports.directory
        if directory is None:
            _failed(plan, target, "people and schedules are not available in this deployment")
            return
        if target.type == "person":
            person = await lookups.person(directory, incident.tenant_id, target.id, plan.task.due_at)
            people = [] if person is None else [person]
            if person is None:
                _failed(plan, target, f"no person {target.id!r}")
        else:
            people = await lookups.on_call(directory, incident.tenant_id, target.id, plan.task.due_at)
            if not people:
                _failed(plan, target, f"nobody is on call on schedule {target.id!r}")
        for person in people:
            for rule in person.notification_rules:
                if rule.after_minutes > 0:
                    plan.next_tasks.append(
                        person_rule_task(
                            plan.task,
                            person_id=person.id,
                            contact_method_id=rule.contact_method_id,
                            after_minutes=rule.after_minutes,
                            now=now,
                        )
                    )
                else:
                    await self._plan_person(plan, incident, person, rule.contact_method_id, target, now)

    async def _plan_person_rule(self, plan: _Plan, incident: Incident, lookups: _Lookups, now: datetime) -> None:
        directory = self._ports.directory
        person_id = str(plan.task.data.get("person_id", ""))
        target = StepTarget(type="person", id=person_id)
        person = (
            None
            if directory is None
            else await lookups.person(directory, incident.tenant_id, person_id, plan.task.due_at)
        )
        if person is None:
            _failed(plan, target, f"no person {person_id!r}")
            return
        await self._plan_person(plan, incident, person, str(plan.task.data.get("contact_method_id", "")), target, now)

    async def _plan_person(
        self,
        plan: _Plan,
        incident: Incident,
        person: Person,
        contact_method_id: str,
        target: StepTarget,
        now: datetime,
    ) -> None:
        method = next((method for method in person.contact_methods if method.id == contact_method_id), None)
        if self._ports.notifier is None or method is None:
            reason = (
                "person notifications are not available" if self._ports.notifier is None else "no such contact method"
            )
            _failed(plan, target, f"{reason} ({person.id}/{contact_method_id})")
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
        key = dedup_key(plan.task, person.id, method.id)
        entry = _task_entry(
            plan,
            f"notified:{person.id}:{method.id}",
            "notified",
            f"notified {person.name} by {method.type}",
            {
                "target": {"type": target.type, "id": target.id},
                "person_id": person.id,
                "contact_method_id": method.id,
                "contact_method_type": method.type,
                "delivery_id": None,  # the notification's, once stored
                "dedup_key": key,
            },
        )
        plan.notices.append((PersonNotice(incident.tenant_id, person, method, message, key), entry))

    async def _plan_channel(
        self, plan: _Plan, incident: Incident, run: EscalationRun, channel_id: str, now: datetime
    ) -> None:
        task = plan.task
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
        plan.deliveries.append(delivery)
        _task_entry(
            plan,
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

    async def _entry(
        self,
        incident: Incident,
        source: str,
        event_type: TimelineEventType,
        content: str,
        at: datetime,
        data: dict[str, object] | None = None,
    ) -> None:
        draft = _draft(source, event_type, content, at, data)
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


def _version_of(plan: _Plan) -> tuple[IncidentVersion | None, RunVersion | None]:
    """The versions of the incident and run `plan` was made from (None for one that was absent)."""
    incident, run = plan.incident, plan.run
    return (
        None if incident is None else (incident.status, incident.updated_at),
        None if run is None else (run.id, run.status, run.cycle, run.updated_at),
    )


def _draft(
    source: str, event_type: TimelineEventType, content: str, at: datetime, data: dict[str, object] | None = None
) -> EntryDraft:
    """The entry named by `source` (its id derived from it, so a re-run of the task writes it once)."""
    entry_key = "tle_" + hashlib.sha256(source.encode()).hexdigest()[:24]
    return EntryDraft(
        id=entry_key,
        source_id=entry_key,
        occurred_at=at,
        event_type=event_type,
        actor=SYSTEM_ACTOR,
        content=content,
        data=data,
    )


def _task_entry(
    plan: _Plan, part: str, event_type: TimelineEventType, content: str, data: dict[str, object]
) -> _PlannedEntry:
    entry = _PlannedEntry(f"{plan.task.id}:{part}", event_type, content, data)
    plan.entries.append(entry)
    return entry


def _failed(plan: _Plan, target: StepTarget, reason: str) -> None:
    logger.warning("escalation task %s: %s %s not notified: %s", plan.task.id, target.type, target.id, reason)
    _task_entry(
        plan,
        f"failed:{target.type}:{target.id}",
        "notification_failed",
        f"{target.type} {target.id} not notified: {reason}",
        {"target": {"type": target.type, "id": target.id}, "reason": reason},
    )


def _targets(
    tasks: Iterable[EscalationTask],
    incidents: Mapping[tuple[str, str], Incident],
    runs: Mapping[tuple[str, str], EscalationRun],
) -> Iterator[_Target]:
    """The targets the steps and person rules among `tasks` may notify, with their due instants (what the batch
    reads before it plans)."""
    for task in tasks:
        key = (task.tenant_id, task.incident_id)
        run, incident = runs.get(key), incidents.get(key)
        if run is None or incident is None or run.id != task.run_id or run.cycle != task.cycle:
            continue
        if incident.status != "triggered" or run.status != "active":
            continue  # stops: nothing is sent
        if task.kind == "person_rule":
            yield task.tenant_id, "person", str(task.data.get("person_id", "")), task.due_at
        if task.kind != "step" or task.step_index >= len(run.policy.steps):
            continue
        step = run.policy.steps[task.step_index]
        for target in step_targets(step, cycle=task.cycle, repeat=task.repeat, repeats=run.policy.repeat):
            yield task.tenant_id, target.type, target.id, task.due_at


class DueEscalationTasks:
    """The scheduler's source: tasks claimed in the database, up to `lookahead_seconds` before they are due, for
    `claim_seconds` after that, run in batches of up to `batch_size` (one scheduler item is one batch)."""

    def __init__(
        self,
        store: EscalationStore,
        steps: EscalationSteps,
        claim_seconds: float,
        *,
        batch_size: int = 1,
        lookahead_seconds: float = 0.0,
    ) -> None:
        self._store = store
        self._steps = steps
        self._claim = timedelta(seconds=claim_seconds)
        self._lookahead = timedelta(seconds=lookahead_seconds)
        self._batch_size = batch_size

    async def claim_due(
        self, now: datetime, limit: int, *, running: Set[str]
    ) -> Sequence[Claim[Sequence[EscalationTask]]]:
        """Claim up to `limit` batches (oldest due first), in one statement."""
        size = self._batch_size
        due_by = now + self._lookahead
        claimed = await self._store.claim_due_tasks(
            self._steps.holder, now=now, until=due_by + self._claim, limit=limit * size, due_by=due_by
        )
        batches = [claimed[start : start + size] for start in range(0, len(claimed), size)]
        return [
            Claim(
                batch[0].id if len(batch) == 1 else f"{batch[0].id}+{len(batch) - 1}",
                batch,
                due_at=batch[0].due_at,
                deadline=min((task.claim_expires_at for task in batch if task.claim_expires_at), default=None),
            )
            for batch in batches
        ]

    async def run(self, item: Sequence[EscalationTask]) -> None:
        await self._steps.run_batch(item)
