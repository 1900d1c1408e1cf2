"""The notify role's incident worker over a real Runtime (SQLite or PostgreSQL, memory bus): alert events in,
incidents and `IncidentEvent`s out; re-fires, auto-resolve, redelivery, silences, concurrent workers, and the
outbox that publishes what a bus outage left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.domain.alerting import AlertEvent, AlertState, IncidentEvent
from mintlog.domain.incidents import plan_alert_change
from mintlog.domain.silences import Silence
from mintlog.domain.streams import decode_incident_event, encode_event
from mintlog.domain.tenants import Tenant
from mintlog.errors import BusUnavailable
from mintlog.launch.bootstrap import bootstrap
from mintlog.ports.bus import BusConsumer, PublishAck
from mintlog.roles.notify.incident_worker import IncidentWorker
from mintlog.runtime import Runtime
from mintlog.settings import load_settings


class FlakyBus(MemoryEventBus):
    """A memory bus that refuses incident events while `down` is set (a bus outage after the commit)."""

    down = False

    async def publish(
        self, subject: str, payload: bytes, *, msg_id: str | None = None, headers: dict[str, str] | None = None
    ) -> PublishAck:
        if self.down and subject.startswith("incidents."):
            raise BusUnavailable("the bus is down (test)")
        return await super().publish(subject, payload, msg_id=msg_id, headers=headers)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None: SQLite in the data directory, the embedded default."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_database_url")


@pytest.fixture
async def runtime(tmp_path: Path, database_url: str | None) -> AsyncIterator[Runtime]:
    environ = {
        "MINTLOG_DATA_DIR": str(tmp_path / "data"),
        "MINTLOG_INCIDENTS__RETRY_DELAY_SECONDS": "0.2",
        "MINTLOG_INCIDENTS__OUTBOX_MIN_AGE_SECONDS": "0",
        "MINTLOG_INCIDENTS__OUTBOX_INTERVAL_SECONDS": "3600",
    }
    if database_url is not None:
        environ["MINTLOG_DATABASE__URL"] = database_url
    settings = load_settings(environ, env_file=None)
    runtime = bootstrap(settings, bus=FlakyBus())
    await runtime.open()
    await runtime.metadata.create_tenant(Tenant(id="acme", name="Acme", created_at=datetime.now(UTC)))
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def worker(runtime: Runtime) -> AsyncIterator[IncidentWorker]:
    started = IncidentWorker(runtime)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


def alert(number: int, state: AlertState = "firing", **changes: object) -> AlertEvent:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "id": f"alert:rule_1:g1:{number}",
        "tenant_id": "acme",
        "rule_id": "rule_1",
        "rule_name": "high-errors",
        "dedup_key": "rule_1:g1",
        "group": {"service": "checkout"},
        "previous_state": "pending",
        "state": state,
        "value": 6.0,
        "threshold": 5.0,
        "comparator": "gt",
        "window_start": now - timedelta(minutes=5),
        "window_end": now,
        "evaluated_at": now,
        "severity": "critical",
        "labels": {"team": "payments"},
        "message": "6 errors in 5 minutes",
        "channel_ids": ["ch_1"],
        "auto_resolve_incident": True,
    }
    fields.update(changes)
    return AlertEvent(**fields)  # type: ignore[arg-type]


async def send(runtime: Runtime, event: AlertEvent, *, msg_id: str | None = "same") -> None:
    await runtime.bus.publish(
        f"alerts.events.{event.tenant_id}", encode_event(event), msg_id=event.id if msg_id == "same" else msg_id
    )


class Reader:
    """Collects the incident events published, through a durable consumer of its own."""

    def __init__(self, consumer: BusConsumer) -> None:
        self._consumer = consumer
        self.events: list[IncidentEvent] = []

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[IncidentEvent]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.events) < count and asyncio.get_running_loop().time() < deadline:
            for message in await self._consumer.fetch(50, 0.2):
                self.events.append(decode_incident_event(message.data))
                await message.ack()
        return self.events

    async def settle(self, seconds: float = 1.0) -> list[IncidentEvent]:
        """Everything published until nothing more arrives for `seconds`."""
        await self.wait_for(len(self.events) + 1_000_000, timeout=seconds)
        return self.events


@pytest.fixture
async def reader(runtime: Runtime) -> AsyncIterator[Reader]:
    consumer = await runtime.bus.consumer(
        "INCIDENTS_EVENTS", "test-reader", filter_subject="incidents.events.>", ack_wait_seconds=30
    )
    try:
        yield Reader(consumer)
    finally:
        await consumer.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_firing_opens_one_incident_refire_appends_and_resolution_resolves(
    runtime: Runtime, worker: IncidentWorker, reader: Reader
) -> None:
    await send(runtime, alert(1))
    [triggered] = await reader.wait_for(1)
    assert (triggered.type, triggered.notify, triggered.actor) == ("incident.triggered", True, "system")
    assert (triggered.channel_ids, triggered.rule_id, triggered.severity) == (["ch_1"], "rule_1", "critical")
    assert triggered.alert is not None
    assert (triggered.alert.id, triggered.alert.value) == ("alert:rule_1:g1:1", 6.0)
    incidents = await runtime.incidents.list_incidents("acme")
    assert [incident.id for incident in incidents] == [triggered.incident_id]
    assert incidents[0].title == "high-errors (service=checkout)"

    await send(runtime, alert(2))
    await send(runtime, alert(3, "resolved", previous_state="firing"))
    events = await reader.wait_for(3)
    assert [(e.type, e.notify, e.status) for e in events] == [
        ("incident.triggered", True, "triggered"),
        ("incident.alert_refired", False, "triggered"),
        ("incident.resolved", True, "resolved"),
    ]
    incident = await runtime.incidents.get_incident("acme", triggered.incident_id)
    assert incident is not None
    assert (incident.status, incident.resolved_by) == ("resolved", "system")
    timeline = await runtime.incidents.timeline("acme", incident.id)
    assert [(entry.event_type, entry.actor) for entry in timeline] == [
        ("triggered", "system"),
        ("alert_refired", "system"),
        ("resolved", "system"),
    ]
    assert [entry.id for entry in timeline] == [e.id for e in events]

    async def all_marked_published() -> bool:  # marked just after the publish the reader saw
        entries = await runtime.incidents.timeline("acme", triggered.incident_id)
        return all(entry.published_at is not None for entry in entries)

    await eventually(all_marked_published)


async def test_a_redelivered_alert_event_changes_and_publishes_nothing_twice(
    runtime: Runtime, worker: IncidentWorker, reader: Reader
) -> None:
    await send(runtime, alert(1), msg_id="first-delivery")
    await send(runtime, alert(1), msg_id="second-delivery")  # the same alert event, not deduplicated by the bus
    await send(runtime, alert(2, "resolved", auto_resolve_incident=False))
    await send(runtime, alert(2, "resolved", auto_resolve_incident=False), msg_id="again")
    await reader.wait_for(2)  # generous on a loaded machine; then anything published twice would follow
    events = await reader.settle(1.5)
    assert [e.type for e in events] == ["incident.triggered", "incident.alert_resolved"]
    [incident] = await runtime.incidents.list_incidents("acme")
    assert incident.status == "triggered"
    assert len(await runtime.incidents.timeline("acme", incident.id)) == 2


async def test_a_silenced_alert_opens_its_incident_without_notifying(
    runtime: Runtime, worker: IncidentWorker, reader: Reader
) -> None:
    now = datetime.now(UTC)
    await runtime.incidents.create_silence(
        Silence(
            id="sil_deploy",
            tenant_id="acme",
            labels={"service": "checkout"},
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=1),
            created_by="mlk_abcdefgh",
            created_at=now,
        )
    )
    await send(runtime, alert(1))
    [event] = await reader.wait_for(1)
    assert (event.type, event.notify, event.silenced_by) == ("incident.triggered", False, "sil_deploy")
    [entry] = await runtime.incidents.timeline("acme", event.incident_id)
    assert entry.content is not None
    assert "silenced by sil_deploy" in entry.content

    await runtime.incidents.expire_silence("acme", "sil_deploy", now=datetime.now(UTC))
    await send(runtime, alert(2, "resolved"))
    events = await reader.wait_for(2)
    assert (events[1].type, events[1].notify, events[1].silenced_by) == ("incident.resolved", True, None)


async def test_fifty_firing_events_of_one_dedup_key_on_two_workers_open_one_incident(
    runtime: Runtime, worker: IncidentWorker, reader: Reader
) -> None:
    second = IncidentWorker(runtime)
    await second.start()
    try:
        await asyncio.gather(*(send(runtime, alert(number)) for number in range(50)))
        events = await reader.wait_for(50, timeout=30)
    finally:
        await second.stop()
    assert len(events) == 50
    assert [e.type for e in events].count("incident.triggered") == 1
    [incident] = await runtime.incidents.list_incidents("acme")
    assert len(await runtime.incidents.timeline("acme", incident.id)) == 50


async def test_events_the_bus_refused_after_the_commit_are_published_later(
    runtime: Runtime, worker: IncidentWorker, reader: Reader
) -> None:
    bus = runtime.bus
    assert isinstance(bus, FlakyBus)
    bus.down = True
    await send(runtime, alert(1))

    async def recorded() -> bool:
        return len(await runtime.incidents.list_incidents("acme")) == 1

    await eventually(recorded)
    assert await reader.settle(0.5) == []
    bus.down = False
    [event] = await reader.wait_for(1)  # the redelivered alert event publishes what was committed
    assert event.type == "incident.triggered"
    assert await reader.settle(1.0) == [event]


async def test_the_outbox_sweeper_publishes_what_a_crash_left_unpublished(runtime: Runtime, reader: Reader) -> None:
    event = alert(1)
    # The change committed, then the process died before publishing.
    applied = await runtime.incidents.apply_alert(
        "acme", event.dedup_key, event.id, partial(plan_alert_change, event, silenced_by=None, now=datetime.now(UTC))
    )
    assert applied is not None
    worker = IncidentWorker(runtime)
    assert await worker.outbox.sweep() == 1
    [published] = await reader.wait_for(1)
    assert (published.id, published.type) == (applied.entry.id, "incident.triggered")
    assert await worker.outbox.sweep() == 0
    [entry] = await runtime.incidents.timeline("acme", applied.incident.id)
    assert entry.published_at is not None
    # While one instance holds the outbox lease, another one's sweep does nothing.
    refire = alert(2)
    await runtime.incidents.apply_alert(
        "acme", refire.dedup_key, refire.id, partial(plan_alert_change, refire, silenced_by=None, now=datetime.now(UTC))
    )
    other = IncidentWorker(runtime)
    assert await other.outbox.sweep() == 0
    assert await worker.outbox.sweep() == 1
    assert [e.type for e in await reader.wait_for(2)] == ["incident.triggered", "incident.alert_refired"]


async def test_what_is_not_an_alert_event_of_its_subject_s_tenant_is_dead_lettered_with_why(
    runtime: Runtime, worker: IncidentWorker, reader: Reader
) -> None:
    dead = await runtime.bus.consumer("DEAD_LETTERS", "test-dead", filter_subject="deadletter.>", ack_wait_seconds=30)
    await runtime.bus.publish("alerts.events.acme", b"not json", msg_id="garbage", headers={"X-Trace": "t-1"})
    foreign_event = encode_event(alert(1, tenant_id="globex"))
    await runtime.bus.publish("alerts.events.acme", foreign_event, msg_id="foreign")

    letters: list[tuple[str, dict[str, str], bytes]] = []
    deadline = asyncio.get_running_loop().time() + 10
    while len(letters) < 2 and asyncio.get_running_loop().time() < deadline:
        for message in await dead.fetch(10, 0.2):
            letters.append((message.subject, message.headers, message.data))
            await message.ack()
    await dead.close()

    assert [(subject, data) for subject, _, data in letters] == [
        ("deadletter.alerts.events.acme", b"not json"),
        ("deadletter.alerts.events.acme", foreign_event),
    ]
    malformed, foreign = (headers for _, headers, _ in letters)
    assert malformed["Mintlog-Dead-Code"] == "malformed"
    assert malformed["Mintlog-Dead-Reason"].startswith("not an alert event:")
    assert (malformed["Mintlog-Dead-Consumer"], malformed["Mintlog-Original-Subject"]) == (
        "notify-incidents",
        "alerts.events.acme",
    )
    assert (malformed["Mintlog-Deliveries"], malformed["X-Trace"]) == ("1", "t-1")
    assert "Nats-Msg-Id" not in malformed
    assert foreign["Mintlog-Dead-Code"] == "wrong_tenant"
    assert foreign["Mintlog-Dead-Reason"] == "event of tenant 'globex' on alerts.events.acme"
    assert await runtime.incidents.list_incidents("acme") == []
    assert await reader.settle(0.5) == []
