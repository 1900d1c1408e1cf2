"""Two escalation engines (two notify instances) over one real PostgreSQL: every step, person rule and
re-trigger is claimed by exactly one of them, so nobody is notified twice; an acknowledgement stops the steps,
and its timeout re-triggers escalation from step 1. People come from the fakes of the on-call ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from mintlog.adapters.db.escalation_sql import SqlEscalationStore
from mintlog.adapters.db.incidents_sql import SqlIncidentStore
from mintlog.adapters.db.notifications_sql import SqlNotificationStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.escalation import (
    EscalationRun,
    PolicySpec,
    StepSpec,
    StepTarget,
    ack_timeout_task,
    first_step_task,
    new_run_id,
)
from mintlog.domain.incidents import EntryDraft, Incident, new_entry_id
from mintlog.domain.oncall_people import Person
from mintlog.domain.tenants import Tenant
from mintlog.roles.kit.link_keys import LinkKeys
from mintlog.roles.notify.escalation_steps import DueEscalationTasks, EscalationSteps, StepPorts
from mintlog.settings import EscalationSettings
from tests.fakes import NOW, FakeOnCallDirectory, FakePersonNotifier, FakeWallClock, escalation_person

TENANT = "acme"


def person(person_id: str) -> Person:
    return escalation_person(person_id, tenant_id=TENANT, time_zone="Europe/Berlin")


@dataclass
class World:
    escalation: SqlEscalationStore
    incidents: SqlIncidentStore
    notifier: FakePersonNotifier
    clock: FakeWallClock
    sources: list[DueEscalationTasks]

    async def tick(self, seconds: float) -> int:
        """Advance the clock, let both instances claim at once, run what each claimed; how many ran."""
        self.clock.advance(seconds)
        now = self.clock()
        claimed = await asyncio.gather(*(source.claim_due(now, 50, running=frozenset()) for source in self.sources))
        runs = [
            source.run(claim.item) for source, claims in zip(self.sources, claimed, strict=True) for claim in claims
        ]
        await asyncio.gather(*runs)
        return len(runs)

    def sent_to(self) -> list[str]:
        return [f"{call.person_id}/{call.contact_method_id}" for call in self.notifier.calls]


@pytest.fixture
async def world(postgres_database_url: str) -> AsyncIterator[World]:
    metadata = SqlMetadataStore(postgres_database_url)
    await metadata.start()
    await metadata.create_tenant(Tenant(id=TENANT, name=TENANT, created_at=NOW))
    directory = FakeOnCallDirectory()
    for person_id in ("alice", "bob"):
        directory.people[(TENANT, person_id)] = person(person_id)
    directory.on_call[(TENANT, "sch_primary")] = ["bob"]
    escalation = SqlEscalationStore(metadata)
    incidents = SqlIncidentStore(metadata)
    notifier = FakePersonNotifier()
    clock = FakeWallClock()
    settings = EscalationSettings(link_secret="integration-secret", public_url="https://mintlog.example.com")
    ports = StepPorts(escalation, incidents, SqlNotificationStore(metadata), directory, notifier)
    sources = [
        DueEscalationTasks(
            escalation,
            EscalationSteps(
                ports, settings, links=LinkKeys(settings, escalation), holder=f"notify-{name}", clock=clock
            ),
            claim_seconds=60,
        )
        for name in ("a", "b")
    ]
    try:
        yield World(escalation, incidents, notifier, clock, sources)
    finally:
        await metadata.close()


async def open_incident(world: World, spec: PolicySpec) -> Incident:
    now = world.clock()
    incident = Incident(
        id="inc_1", tenant_id=TENANT, title="db down", severity="critical", status="triggered",
        created_by="system", created_at=now, updated_at=now,
    )  # fmt: skip
    entry_id = new_entry_id()
    await world.incidents.create_incident(
        incident, EntryDraft(id=entry_id, source_id=entry_id, occurred_at=now, event_type="triggered", actor="system")
    )
    run = EscalationRun(
        id=new_run_id(incident.id), tenant_id=TENANT, incident_id=incident.id, policy_id="esp_1", policy=spec,
        status="active", cycle=0, started_at=now, updated_at=now,
    )  # fmt: skip
    assert await world.escalation.start_run(run, first_step_task(run, now=now))
    assert not await world.escalation.start_run(run, first_step_task(run, now=now))  # once per incident
    return incident


POLICY = PolicySpec(
    name="database",
    steps=[
        StepSpec(targets=[StepTarget(type="person", id="alice")]),
        StepSpec(delay_minutes=2, targets=[StepTarget(type="schedule", id="sch_primary")]),
    ],
    ack_timeout_minutes=10,
)


async def test_two_instances_notify_each_person_once_per_step_and_rule(world: World) -> None:
    await open_incident(world, POLICY)
    assert await world.tick(0) == 1  # step 1: one instance claims it
    assert world.sent_to() == ["alice/alice-email"]
    assert await world.tick(30) == 0
    assert await world.tick(30) == 1  # alice's rule "after 1 minute by chat"
    assert world.sent_to() == ["alice/alice-email", "alice/alice-chat"]
    assert await world.tick(60) == 1  # step 2: whoever is on call on the schedule
    assert world.sent_to()[2:] == ["bob/bob-email"]
    assert await world.tick(60) == 1  # bob's chat rule
    assert await world.tick(600) == 0  # nothing is left
    keys = [call.dedup_key for call in world.notifier.calls]
    assert len(keys) == len(set(keys)) == 4
    message = world.notifier.calls[0].message
    assert message.acknowledge_url is not None
    assert message.acknowledge_url.startswith("https://mintlog.example.com/oncall/actions/")
    timeline = [entry.event_type for entry in await world.incidents.timeline(TENANT, "inc_1")]
    assert timeline.count("escalation_step") == 2
    assert timeline.count("notified") == 4
    assert timeline.count("escalation_exhausted") == 1


async def test_acknowledging_stops_the_next_steps_and_its_timeout_retriggers_from_step_1(world: World) -> None:
    incident = await open_incident(world, POLICY)
    await world.tick(0)
    world.clock.advance(1)  # after step 1's timeline entries: an entry at their instant is stamped 1 µs after them
    acked = world.clock()
    draft = EntryDraft(
        id=new_entry_id(), source_id="ack-1", occurred_at=acked, event_type="acknowledged", actor="person:alice"
    )
    applied = await world.incidents.change_status(TENANT, incident.id, "acknowledged", draft)
    assert applied is not None
    assert applied.incident.acknowledged_at is not None
    # What the notify role does on `incident.acknowledged` (EscalationStarter): stop the steps, arm the timeout.
    await world.escalation.stop_run(TENANT, incident.id, reason="acknowledged", at=acked, keep_ack_timeout=True)
    run = await world.escalation.get_run(TENANT, incident.id)
    assert run is not None
    await world.escalation.add_tasks(
        [ack_timeout_task(run, acknowledged_at=applied.incident.acknowledged_at, minutes=10)], now=acked
    )
    await world.tick(5 * 60)
    assert world.sent_to() == ["alice/alice-email"]  # neither alice's chat rule nor step 2

    await world.tick(5 * 60)  # ten minutes acknowledged and not resolved
    retriggered = await world.incidents.get_incident(TENANT, incident.id)
    assert retriggered is not None
    assert retriggered.status == "triggered"
    await world.tick(0)
    assert world.sent_to() == ["alice/alice-email", "alice/alice-email"]
    first, again = world.notifier.calls
    assert first.dedup_key != again.dedup_key  # a new cycle is a new notification, not a duplicate
    assert ":esr_" in again.dedup_key
    assert ".1:0:0:alice:alice-email" in again.dedup_key
    timeline = [entry.event_type for entry in await world.incidents.timeline(TENANT, incident.id)]
    assert "retriggered" in timeline
    assert timedelta(minutes=10) <= world.clock() - acked
