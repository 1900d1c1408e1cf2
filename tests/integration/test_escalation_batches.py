"""Escalation steps run in batches, on SQLite and on a real PostgreSQL: the stores' batch reads and writes, and
`EscalationSteps.run_batch` keeping the guarantees of one task at a time (docs/escalation.md): an acknowledged
incident in the middle of a batch sends nothing, a batch run again after a crash sends nothing twice, a task is
completed only while its claim is held, and escalation entries are stamped after the incident's last change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from mintlog.adapters.db.escalation_sql import SqlEscalationStore
from mintlog.adapters.db.incidents_sql import SqlIncidentStore
from mintlog.adapters.db.notifications_sql import SqlNotificationStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.channels import Channel, Delivery, DeliveryFilter
from mintlog.domain.escalation import (
    EscalationRun,
    EscalationTask,
    PolicySpec,
    StepSpec,
    StepTarget,
    ack_timeout_task,
    first_step_task,
    new_run_id,
    task_id,
)
from mintlog.domain.incidents import EntryDraft, Incident, new_entry_id
from mintlog.domain.oncall_people import Person
from mintlog.domain.tenants import Tenant
from mintlog.errors import DatabaseUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.incidents import NewEntry
from mintlog.ports.person_notify import PersonMessage, PersonNotice
from mintlog.roles.kit.link_keys import LinkKeys
from mintlog.roles.notify.escalation_steps import DueEscalationTasks, EscalationSteps, StepPorts
from mintlog.roles.notify.person_notifier import StoredPersonNotifier
from mintlog.settings import EscalationSettings
from tests.fakes import NOW, FakeOnCallDirectory, FakeWallClock, escalation_person

TENANT = "acme"
OTHER = "globex"
CHANNEL = "chn_ops"

POLICY = PolicySpec(
    name="database",
    steps=[
        StepSpec(targets=[StepTarget(type="channel", id=CHANNEL), StepTarget(type="schedule", id="sch_primary")]),
        StepSpec(delay_minutes=5, targets=[StepTarget(type="person", id="alice")]),
    ],
)


def person(person_id: str) -> Person:
    return escalation_person(person_id, tenant_id=TENANT)


class BrokenScheduleDirectory(FakeOnCallDirectory):
    """A directory whose lookups of schedule `sch_broken` raise (a bug in rendering one schedule, say)."""

    async def people_on_call(self, tenant_id: str, schedule_id: str, at: datetime) -> list[Person]:
        if schedule_id == "sch_broken":
            raise RuntimeError("cannot render sch_broken")
        return await super().people_on_call(tenant_id, schedule_id, at)


class CrashingEscalationStore(SqlEscalationStore):
    """The real store, but the process "dies" before the batch's tasks are completed while `crash` is set."""

    crash = False

    async def complete_tasks(
        self, completions: Sequence[tuple[str, Sequence[EscalationTask]]], holder: str, *, now: datetime
    ) -> set[str]:
        if self.crash:
            raise DatabaseUnavailable("the process died before completing its tasks")
        return await super().complete_tasks(completions, holder, now=now)


@dataclass
class World:
    metadata: SqlMetadataStore
    escalation: CrashingEscalationStore
    incidents: SqlIncidentStore
    notifications: SqlNotificationStore
    directory: FakeOnCallDirectory
    clock: FakeWallClock
    sources: dict[str, DueEscalationTasks]

    async def run(self, instance: str) -> int:
        """Instance `instance` claims what is due now (in batches of 10) and runs it; how many tasks ran."""
        source = self.sources[instance]
        claims = await source.claim_due(self.clock(), 10, running=frozenset())
        for claim in claims:
            await source.run(claim.item)
        return sum(len(claim.item) for claim in claims)

    async def deliveries(self, *, channel_id: str | None = None, person_id: str | None = None) -> list[Delivery]:
        query = DeliveryFilter(channel_id=channel_id, person_id=person_id, limit=1000)
        return list(await self.notifications.list_deliveries(TENANT, query))

    async def event_types(self, incident_id: str) -> list[str]:
        return [entry.event_type for entry in await self.incidents.timeline(TENANT, incident_id)]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    metadata = SqlMetadataStore(database_url)
    await metadata.start()
    for tenant_id in (TENANT, OTHER):
        await metadata.create_tenant(Tenant(id=tenant_id, name=tenant_id, created_at=NOW))
    notifications = SqlNotificationStore(metadata)
    await notifications.create_channel(
        Channel(
            id=CHANNEL, tenant_id=TENANT, name="ops", channel_type="webhook", url="https://hooks.example.com/ops",
            headers={}, secret="s3cret", is_active=True, created_at=NOW, updated_at=NOW,
        )
    )  # fmt: skip
    directory = BrokenScheduleDirectory()
    for person_id in ("alice", "bob"):
        directory.people[(TENANT, person_id)] = person(person_id)
    directory.on_call[(TENANT, "sch_primary")] = ["bob"]
    escalation = CrashingEscalationStore(metadata)
    incidents = SqlIncidentStore(metadata)
    clock = FakeWallClock()
    settings = EscalationSettings(link_secret="batch-secret", public_url="https://mintlog.example.com")
    notifier = StoredPersonNotifier(notifications, metrics=Metrics(), clock=clock)
    ports = StepPorts(escalation, incidents, notifications, directory, notifier)
    sources = {
        name: DueEscalationTasks(
            escalation,
            EscalationSteps(ports, settings, links=LinkKeys(settings, escalation), holder=name, clock=clock),
            claim_seconds=60,
            batch_size=10,
        )
        for name in ("notify-a", "notify-b")
    }
    try:
        yield World(metadata, escalation, incidents, notifications, directory, clock, sources)
    finally:
        await metadata.close()


async def open_incident(world: World, number: int, *, tenant_id: str = TENANT, policy: PolicySpec = POLICY) -> Incident:
    now = world.clock()
    incident = Incident(
        id=f"inc_{number}", tenant_id=tenant_id, title=f"db down {number}", severity="critical",
        status="triggered", created_by="system", created_at=now, updated_at=now,
    )  # fmt: skip
    entry_id = new_entry_id()
    await world.incidents.create_incident(
        incident, EntryDraft(id=entry_id, source_id=entry_id, occurred_at=now, event_type="triggered", actor="system")
    )
    run = EscalationRun(
        id=new_run_id(incident.id), tenant_id=tenant_id, incident_id=incident.id, policy_id="esp_1",
        policy=policy, status="active", cycle=0, started_at=now, updated_at=now,
    )  # fmt: skip
    assert await world.escalation.start_run(run, first_step_task(run, now=now))
    return incident


async def acknowledge(world: World, incident_id: str) -> None:
    draft = EntryDraft(
        id=new_entry_id(), source_id=new_entry_id(), occurred_at=world.clock(), event_type="acknowledged",
        actor="person:alice",
    )  # fmt: skip
    assert await world.incidents.change_status(TENANT, incident_id, "acknowledged", draft) is not None


# The stores' batch methods


async def test_batch_reads_find_each_tenants_own(world: World) -> None:
    await open_incident(world, 1)
    await open_incident(world, 2, tenant_id=OTHER)
    keys = [(TENANT, "inc_1"), (TENANT, "inc_2"), (OTHER, "inc_1"), (TENANT, "inc_9")]
    assert sorted(incident.id for incident in await world.incidents.get_incidents(keys)) == ["inc_1"]
    assert [(run.tenant_id, run.incident_id) for run in await world.escalation.get_runs(keys)] == [(TENANT, "inc_1")]
    assert await world.incidents.get_incidents([]) == []
    assert await world.escalation.get_runs([]) == []


async def test_versions_tell_an_incident_or_run_changed_in_a_small_read(world: World) -> None:
    incident = await open_incident(world, 1)
    key = (TENANT, incident.id)
    before = await world.incidents.incident_versions([key, (OTHER, incident.id), (TENANT, "inc_none")])
    assert before == {key: ("triggered", incident.updated_at)}  # another tenant's or an absent one: none
    (run,) = await world.escalation.get_runs([key])
    assert await world.escalation.run_versions([key]) == {key: (run.id, "active", 0, run.updated_at)}
    world.clock.advance(1)
    await acknowledge(world, incident.id)
    ((status, updated_at),) = (await world.incidents.incident_versions([key])).values()
    assert status == "acknowledged"
    assert updated_at > incident.updated_at
    assert await world.escalation.stop_run(
        TENANT, incident.id, reason="acknowledged", at=world.clock(), keep_ack_timeout=True
    )
    assert await world.escalation.run_versions([key]) == {key: (run.id, "stopped", 0, world.clock())}


async def test_append_entries_stamps_after_the_incidents_last_change_in_order_and_once(world: World) -> None:
    await open_incident(world, 1)
    await open_incident(world, 2)
    world.clock.advance(5)
    await acknowledge(world, "inc_2")  # inc_2 changed at NOW + 5 s, after the drafts' time below
    at = NOW + timedelta(seconds=1)
    drafts = [
        NewEntry(TENANT, incident_id, EntryDraft(id=f"tle_{incident_id}_{part}", source_id=f"tle_{incident_id}_{part}",
                 occurred_at=at, event_type="comment", actor="system", content=part))
        for incident_id in ("inc_1", "inc_2")
        for part in ("a", "b", "c")
    ]  # fmt: skip
    foreign = NewEntry(OTHER, "inc_1", EntryDraft(id="tle_x", source_id="tle_x", occurred_at=at,
                       event_type="comment", actor="system"))  # fmt: skip
    written = await world.incidents.append_entries([*drafts, foreign])
    assert sorted(written) == sorted(draft.draft.id for draft in drafts)
    for incident_id, previous in (("inc_1", NOW), ("inc_2", NOW + timedelta(seconds=5))):
        timeline = [entry for entry in await world.incidents.timeline(TENANT, incident_id) if entry.actor == "system"]
        comments = [entry for entry in timeline if entry.event_type == "comment"]
        assert [entry.content for entry in comments] == ["a", "b", "c"]
        times = [entry.occurred_at for entry in comments]
        assert previous < times[0] < times[1] < times[2]
        incident = await world.incidents.get_incident(TENANT, incident_id)
        assert incident is not None
        assert incident.updated_at == times[2]
    assert await world.incidents.append_entries(drafts) == []  # written before: nothing twice
    assert len(await world.incidents.timeline(TENANT, "inc_1")) == 4


async def test_complete_tasks_completes_only_the_claims_still_held(world: World) -> None:
    await open_incident(world, 1)
    await open_incident(world, 2)
    claimed = await world.escalation.claim_due_tasks(
        "notify-a", now=world.clock(), until=world.clock() + timedelta(seconds=60), limit=10
    )
    assert len(claimed) == 2
    world.clock.advance(61)  # notify-a's claims expire; notify-b takes inc_2's over
    taken = await world.escalation.claim_due_tasks(
        "notify-b", now=world.clock(), until=world.clock() + timedelta(seconds=60), limit=1
    )
    lost = taken[0]
    kept = next(task for task in claimed if task.id != lost.id)

    def following(task: EscalationTask) -> EscalationTask:
        return EscalationTask(
            id=task_id(task.run_id, "later", task.incident_id), tenant_id=TENANT, run_id=task.run_id,
            incident_id=task.incident_id, kind="step", cycle=0, step_index=1, repeat=0,
            due_at=world.clock() + timedelta(hours=1),
        )  # fmt: skip

    done = await world.escalation.complete_tasks(
        [(task.id, [following(task)]) for task in claimed], "notify-a", now=world.clock()
    )
    assert done == {kept.id}
    assert await world.escalation.complete_tasks([(lost.id, [])], "notify-b", now=world.clock()) == {lost.id}
    world.clock.advance(3600)
    later = await world.escalation.claim_due_tasks(
        "notify-c", now=world.clock(), until=world.clock() + timedelta(seconds=60), limit=10
    )
    assert [task.id for task in later] == [following(kept).id]  # notify-a's successor of the lost task: never


async def test_enqueue_person_deliveries_stores_each_dedup_key_once(world: World) -> None:
    notifier = StoredPersonNotifier(world.notifications, metrics=Metrics(), clock=world.clock)
    alice, bob = person("alice"), person("bob")
    message = PersonMessage(incident_id="inc_1", title="db down", severity="critical", source="manual")
    notices = [
        PersonNotice(TENANT, alice, alice.contact_methods[0], message, "k1"),
        PersonNotice(TENANT, bob, bob.contact_methods[0], message, "k2"),
        PersonNotice(TENANT, alice, alice.contact_methods[0], message, "k1"),  # twice in one call
    ]
    first = await notifier.notify_many(notices)
    assert first[0] == first[2] != first[1]
    again = await notifier.notify_many(notices)
    assert again == first
    single = await notifier.notify(TENANT, bob, bob.contact_methods[0], message, dedup_key="k2")
    assert single == first[1]
    assert len(await world.deliveries()) == 2


# Running a batch


async def test_a_batch_notifies_every_incident_once_with_one_lookup_per_schedule(world: World) -> None:
    for number in range(1, 8):
        await open_incident(world, number)
    assert await world.run("notify-a") == 7
    assert len(world.directory.asked_at) == 1  # seven steps, one schedule, one due instant
    assert len(await world.deliveries(channel_id=CHANNEL)) == 7
    assert len(await world.deliveries(person_id="bob")) == 7
    for number in range(1, 8):
        timeline = await world.incidents.timeline(TENANT, f"inc_{number}")
        assert [entry.event_type for entry in timeline] == ["triggered", "escalation_step", "notified", "notified"]
        assert timeline[-1].data["delivery_id"] is not None
        incident = await world.incidents.get_incident(TENANT, f"inc_{number}")
        assert incident is not None
        assert incident.updated_at == timeline[-1].occurred_at
    assert await world.run("notify-b") == 0  # all done
    world.clock.advance(60)
    assert await world.run("notify-b") == 7  # bob's chat rule, one minute later, for each incident
    assert len(await world.deliveries(person_id="bob")) == 14
    world.clock.advance(4 * 60)
    assert await world.run("notify-a") == 7  # step 2: alice
    assert len(await world.deliveries(person_id="alice")) == 7
    assert (await world.event_types("inc_3")).count("escalation_exhausted") == 1


async def test_batches_due_at_one_instant_share_one_lookup_and_a_later_instant_reads_again(world: World) -> None:
    for number in range(1, 26):
        await open_incident(world, number)
    assert await world.run("notify-a") == 25  # three batches of at most 10
    assert len(world.directory.asked_at) == 1  # one schedule, one due instant, shared by the three batches
    assert len(await world.deliveries(person_id="bob")) == 25
    world.directory.on_call[(TENANT, "sch_primary")] = ["alice"]
    await open_incident(world, 26)  # due now: a new instant, so who is on call is read again
    world.clock.advance(1)
    assert await world.run("notify-b") == 1
    assert len(world.directory.asked_at) == 2
    assert [delivery.incident_id for delivery in await world.deliveries(person_id="alice")] == ["inc_26"]


async def test_an_acknowledged_incident_in_the_middle_of_a_batch_is_skipped(world: World) -> None:
    for number in (1, 2, 3):
        await open_incident(world, number)
    claims = await world.sources["notify-a"].claim_due(world.clock(), 10, running=frozenset())
    assert len(claims) == 1
    first, middle, last = (task.incident_id for task in claims[0].item)
    world.clock.advance(1)
    await acknowledge(world, middle)  # after the claim, before the batch reads (no starter here to stop it)
    await world.sources["notify-a"].run(claims[0].item)
    notified = {delivery.incident_id for delivery in await world.deliveries()}
    assert notified == {first, last}
    assert await world.event_types(middle) == ["triggered", "acknowledged", "escalation_stopped"]
    run = await world.escalation.get_run(TENANT, middle)
    assert run is not None
    assert run.status == "stopped"
    world.clock.advance(3600)  # nothing of the middle one comes due later, and every task of the batch was done
    assert await world.run("notify-b") == 4  # bob's chat rule and step 2, of the first and last only
    alice = {delivery.incident_id for delivery in await world.deliveries(person_id="alice")}
    assert alice == {first, last}


async def test_a_batch_run_again_after_a_crash_sends_nothing_twice(world: World) -> None:
    for number in (1, 2, 3):
        await open_incident(world, number)
    world.escalation.crash = True
    with pytest.raises(DatabaseUnavailable):
        await world.run("notify-a")  # everything sent and recorded, then the process dies
    sent = await world.deliveries()
    assert len(sent) == 6
    world.escalation.crash = False
    assert await world.run("notify-b") == 0  # notify-a's claims still hold
    world.clock.advance(61)
    assert await world.run("notify-b") == 3  # the claims expired: the batch runs again
    assert sorted(delivery.id for delivery in await world.deliveries()) == sorted(delivery.id for delivery in sent)
    for number in (1, 2, 3):
        assert await world.event_types(f"inc_{number}") == ["triggered", "escalation_step", "notified", "notified"]
    world.clock.advance(60)
    assert await world.run("notify-a") == 3  # the tasks that follow were inserted once, by the re-run
    assert len(await world.deliveries(person_id="bob")) == 6  # one email and one chat message per incident


async def test_a_task_that_fails_to_plan_is_left_pending_and_the_rest_of_its_batch_runs(world: World) -> None:
    incident = await open_incident(world, 1)
    await open_incident(world, 2)
    run = await world.escalation.get_run(TENANT, incident.id)
    assert run is not None
    broken = EscalationTask(
        id=task_id(run.id, "broken"),
        tenant_id=TENANT,
        run_id=run.id,
        incident_id=incident.id,
        kind="step",
        cycle=0,
        step_index=7,
        repeat=0,
        due_at=world.clock(),
    )  # fmt: skip  (policy has two steps: planning it raises)
    assert await world.escalation.add_tasks([broken], now=world.clock()) == 1
    assert await world.run("notify-a") == 3
    assert {delivery.incident_id for delivery in await world.deliveries(channel_id=CHANNEL)} == {"inc_1", "inc_2"}
    world.clock.advance(61)
    again = await world.escalation.claim_due_tasks(
        "notify-b", now=world.clock(), until=world.clock() + timedelta(seconds=60), limit=10
    )
    steps = [task.id for task in again if task.kind == "step"]
    assert steps == [broken.id]  # of the steps, only the broken one is still pending (the rest: bob's chat rules)


async def test_a_next_task_listed_twice_is_inserted_once(world: World) -> None:
    await open_incident(world, 1)
    claimed = await world.escalation.claim_due_tasks(
        "notify-a", now=world.clock(), until=world.clock() + timedelta(seconds=60), limit=10
    )
    task = claimed[0]
    following = EscalationTask(
        id=task_id(task.run_id, "twice"), tenant_id=TENANT, run_id=task.run_id, incident_id=task.incident_id,
        kind="person_rule", cycle=0, step_index=0, repeat=0, due_at=world.clock(),
    )  # fmt: skip
    done = await world.escalation.complete_tasks([(task.id, [following, following])], "notify-a", now=world.clock())
    assert done == {task.id}
    assert await world.escalation.add_tasks([following], now=world.clock()) == 0


async def test_a_schedule_whose_lookup_fails_fails_only_the_steps_that_name_it(world: World) -> None:
    broken = PolicySpec(name="broken", steps=[StepSpec(targets=[StepTarget(type="schedule", id="sch_broken")])])
    await open_incident(world, 1)
    await open_incident(world, 2, policy=broken)
    await open_incident(world, 3)
    assert await world.run("notify-a") == 3
    assert {delivery.incident_id for delivery in await world.deliveries(person_id="bob")} == {"inc_1", "inc_3"}
    assert await world.event_types("inc_2") == ["triggered"]  # nothing written: it runs again later
    world.clock.advance(61)
    again = await world.escalation.claim_due_tasks(
        "notify-b", now=world.clock(), until=world.clock() + timedelta(seconds=60), limit=10
    )
    assert [task.incident_id for task in again if task.kind == "step"] == ["inc_2"]


# Claimed ahead of the due time (MINTLOG_ESCALATION__LOOKAHEAD_SECONDS)


def claiming_ahead(world: World, sleep: Callable[[float], Awaitable[None]]) -> DueEscalationTasks:
    """Another instance, claiming 2 s ahead; `sleep` is how it waits for a due time (the test's clock)."""
    settings = EscalationSettings(link_secret="batch-secret", public_url="https://mintlog.example.com")
    notifier = StoredPersonNotifier(world.notifications, metrics=Metrics(), clock=world.clock)
    ports = StepPorts(world.escalation, world.incidents, world.notifications, world.directory, notifier)
    links = LinkKeys(settings, world.escalation)
    steps = EscalationSteps(ports, settings, links=links, holder="notify-c", clock=world.clock, sleep=sleep)
    return DueEscalationTasks(world.escalation, steps, claim_seconds=60, batch_size=10, lookahead_seconds=2)


async def test_a_step_claimed_ahead_is_prepared_early_but_written_at_its_due_time(world: World) -> None:
    for number in (1, 2):
        await open_incident(world, number)  # step 1 due at NOW
    world.clock.now = NOW - timedelta(seconds=1.5)
    assert await world.run("notify-a") == 0  # not due yet, and notify-a does not claim ahead
    seen_while_waiting: list[tuple[datetime, int, list[str]]] = []

    async def sleep(seconds: float) -> None:
        seen_while_waiting.append((world.clock(), len(await world.deliveries()), await world.event_types("inc_1")))
        world.clock.advance(seconds)

    source = claiming_ahead(world, sleep)
    claims = await source.claim_due(world.clock(), 10, running=frozenset())
    assert [len(claim.item) for claim in claims] == [2]
    assert await world.run("notify-b") == 0  # claimed by notify-c
    also_ahead = await world.escalation.claim_due_tasks(
        "notify-d", now=world.clock(), until=world.clock(), limit=10, due_by=world.clock() + timedelta(seconds=2)
    )
    assert also_ahead == []  # a claim is taken over only once expired, however far ahead one claims
    await source.run(claims[0].item)
    # It waited once, until the due time, with nothing stored yet.
    assert seen_while_waiting == [(NOW - timedelta(seconds=1.5), 0, ["triggered"])]
    assert len(await world.deliveries(channel_id=CHANNEL)) == 2
    assert len(await world.deliveries(person_id="bob")) == 2
    for number in (1, 2):
        timeline = await world.incidents.timeline(TENANT, f"inc_{number}")
        escalation = [entry for entry in timeline if entry.event_type != "triggered"]
        assert [entry.event_type for entry in escalation] == ["escalation_step", "notified", "notified"]
        assert all(entry.occurred_at >= NOW for entry in escalation)  # never before the step was due
    world.clock.advance(61)  # notify-c's claims would have expired: step 1 is done, nothing runs it again
    later = await world.escalation.claim_due_tasks("notify-a", now=world.clock(), until=world.clock(), limit=10)
    assert sorted(task.kind for task in later) == ["person_rule", "person_rule"]  # bob's chat, a minute on


async def test_an_acknowledgement_while_a_step_waits_for_its_due_time_sends_nothing(world: World) -> None:
    for number in (1, 2):
        await open_incident(world, number)
    world.clock.now = NOW - timedelta(seconds=1)

    async def sleep(seconds: float) -> None:
        await acknowledge(world, "inc_1")  # after the batch was planned, before it is due
        world.clock.advance(seconds)

    source = claiming_ahead(world, sleep)
    claims = await source.claim_due(world.clock(), 10, running=frozenset())
    await source.run(claims[0].item)
    assert [delivery.incident_id for delivery in await world.deliveries()] == ["inc_2", "inc_2"]
    assert await world.event_types("inc_1") == ["triggered", "acknowledged", "escalation_stopped"]
    assert await world.event_types("inc_2") == ["triggered", "escalation_step", "notified", "notified"]
    world.clock.advance(61 + 5 * 60)
    later = await world.escalation.claim_due_tasks("notify-a", now=world.clock(), until=world.clock(), limit=10)
    assert {task.incident_id for task in later} == {"inc_2"}  # inc_1's run stopped: none of its tasks is left


async def test_an_acknowledgement_timeout_claimed_ahead_triggers_again_only_once_due(world: World) -> None:
    incident = await open_incident(world, 1)
    world.clock.advance(60)
    await acknowledge(world, incident.id)
    acknowledged = await world.incidents.get_incident(TENANT, incident.id)
    run = await world.escalation.get_run(TENANT, incident.id)
    assert acknowledged is not None
    assert acknowledged.acknowledged_at is not None
    assert run is not None
    await world.escalation.stop_run(TENANT, incident.id, reason="acknowledged", at=world.clock(), keep_ack_timeout=True)
    timeout = ack_timeout_task(run, acknowledged_at=acknowledged.acknowledged_at, minutes=1)
    assert await world.escalation.add_tasks([timeout], now=world.clock()) == 1
    world.clock.now = timeout.due_at - timedelta(seconds=1)
    statuses_while_waiting: list[str] = []

    async def sleep(seconds: float) -> None:
        current = await world.incidents.get_incident(TENANT, incident.id)
        assert current is not None
        statuses_while_waiting.append(current.status)
        world.clock.advance(seconds)

    source = claiming_ahead(world, sleep)
    claims = await source.claim_due(world.clock(), 10, running=frozenset())
    assert [task.kind for claim in claims for task in claim.item] == ["ack_timeout"]
    await source.run(claims[0].item)
    assert statuses_while_waiting == ["acknowledged"]  # not re-triggered ahead of its time
    retriggered = await world.incidents.get_incident(TENANT, incident.id)
    assert retriggered is not None
    assert retriggered.status == "triggered"


class RecordingIncidents(SqlIncidentStore):
    """The real store, noting in `log` when a batch writes its timeline entries."""

    def __init__(self, metadata: SqlMetadataStore, log: list[str]) -> None:
        super().__init__(metadata)
        self._log = log

    async def append_entries(self, entries: Sequence[NewEntry]) -> list[str]:
        self._log.append("entries")
        return await super().append_entries(entries)


class RecordingNotifier(StoredPersonNotifier):
    """The real notifier, noting in `log` when a batch stores its person notifications."""

    def __init__(self, world: World, log: list[str]) -> None:
        super().__init__(world.notifications, metrics=Metrics(), clock=world.clock)
        self._log = log

    async def notify_many(self, notices: Sequence[PersonNotice]) -> list[str]:
        self._log.append("notify")
        return await super().notify_many(notices)


async def test_in_a_burst_every_notification_is_stored_before_any_batch_writes_its_entries(world: World) -> None:
    for number in range(1, 26):
        await open_incident(world, number)  # step 1 due at NOW
    world.clock.now = NOW - timedelta(seconds=1)
    log: list[str] = []
    settings = EscalationSettings(
        link_secret="batch-secret", public_url="https://mintlog.example.com", batches_running=1
    )
    incidents = RecordingIncidents(world.metadata, log)
    ports = StepPorts(world.escalation, incidents, world.notifications, world.directory, RecordingNotifier(world, log))

    async def sleep(seconds: float) -> None:
        world.clock.now = max(world.clock.now, NOW)
        await asyncio.sleep(0)

    steps = EscalationSteps(
        ports, settings, links=LinkKeys(settings, world.escalation), holder="notify-c", clock=world.clock, sleep=sleep
    )
    source = DueEscalationTasks(world.escalation, steps, claim_seconds=60, batch_size=10, lookahead_seconds=2)
    claims = await source.claim_due(world.clock(), 10, running=frozenset())
    assert [len(claim.item) for claim in claims] == [10, 10, 5]
    await asyncio.gather(*(source.run(claim.item) for claim in claims))
    # One batch writes at a time (batches_running=1), and none writes its entries before all have notified.
    assert log == ["notify", "notify", "notify", "entries", "entries", "entries"]
    assert len(await world.deliveries(person_id="bob")) == 25
    for number in (1, 13, 25):
        timeline = await world.incidents.timeline(TENANT, f"inc_{number}")
        assert [entry.event_type for entry in timeline] == ["triggered", "escalation_step", "notified", "notified"]
    assert await world.run("notify-a") == 0  # every task is done
