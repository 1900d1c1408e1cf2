"""The delivery worker against a real aiohttp receiver on 127.0.0.1 and a real SQLite database: retries with a
stable webhook-id, 410, 429 with Retry-After, refused redirects and addresses, and a sender that dies."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.db.incidents_sql import SqlIncidentStore
from mintlog.adapters.db.notifications_sql import SqlNotificationStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.adapters.http.egress_aiohttp import AiohttpOutboundHttp
from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.channels import Channel, Delivery, DeliveryFilter
from mintlog.domain.egress import EgressPolicy
from mintlog.domain.incidents import EntryDraft, Incident, TimelineEntry
from mintlog.domain.streams import encode_event, incidents_subject
from mintlog.domain.tenants import Tenant
from mintlog.domain.webhooks import verify
from mintlog.metrics import Metrics
from mintlog.roles.notify.delivery_worker import DeliveryWorker
from mintlog.settings import NotifySettings, PipelineSettings
from tests.fakes import FakeSmtpSender

SECRET = "mysecret"
LOOPBACK = EgressPolicy.from_setting(["127.0.0.0/8"])
FAST = NotifySettings(
    max_attempts=5,
    retry_delays_seconds=(0.05,),
    retry_jitter=0.0,
    timeout_seconds=2.0,
    max_retry_after_seconds=30.0,
    claim_seconds=1.0,
    poll_interval_seconds=0.05,
    concurrency=4,
)


@dataclass
class Received:
    arrived: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next scripted reply (200 once the script is exhausted)."""

    replies: list[Callable[[], web.StreamResponse]] = field(default_factory=lambda: [])
    received: list[Received] = field(default_factory=lambda: [])
    hang: asyncio.Event | None = None
    url: str = ""
    port: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(
            Received(
                time.monotonic(), request.path, {k.lower(): v for k, v in request.headers.items()}, await request.read()
            )
        )
        if self.hang is not None and len(self.received) == 1:
            await self.hang.wait()
        return self.replies.pop(0)() if self.replies else web.Response(status=200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server  # pyright: ignore[reportPrivateUsage]
    assert server is not None
    state.port = server.sockets[0].getsockname()[1]  # pyright: ignore[reportAttributeAccessIssue,reportUnknownMemberType]
    state.url = f"http://127.0.0.1:{state.port}/hook"
    try:
        yield state
    finally:
        if state.hang is not None:
            state.hang.set()
        await runner.cleanup()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlNotificationStore]:
    metadata = SqlMetadataStore(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
    await metadata.start()
    await metadata.create_tenant(Tenant(id="acme", name="Acme", created_at=datetime.now(UTC)))
    try:
        yield SqlNotificationStore(metadata)
    finally:
        await metadata.close()


@pytest.fixture
async def bus() -> AsyncIterator[MemoryEventBus]:
    memory = MemoryEventBus()
    await memory.start()
    try:
        yield memory
    finally:
        await memory.close()


# The workers' outbound clients, closed after each test (in a process, the runtime owns and closes its one client).
_OUTBOUNDS: list[AiohttpOutboundHttp] = []


@pytest.fixture(autouse=True)
async def _close_outbounds() -> AsyncIterator[None]:
    yield
    while _OUTBOUNDS:
        await _OUTBOUNDS.pop().close()


def make_worker(
    bus: MemoryEventBus,
    store: SqlNotificationStore,
    *,
    policy: EgressPolicy = LOOPBACK,
    settings: NotifySettings = FAST,
    inner_resolver: AbstractResolver | None = None,
    holder: str | None = None,
    metrics: Metrics | None = None,
    incidents: SqlIncidentStore | None = None,
) -> DeliveryWorker:
    outbound = AiohttpOutboundHttp(policy, inner_resolver=inner_resolver)
    _OUTBOUNDS.append(outbound)
    return DeliveryWorker(
        bus=bus,
        notifications=store,
        outbound=outbound,
        smtp=FakeSmtpSender(),
        settings=settings,
        pipeline=PipelineSettings(ack_wait_seconds=5),
        metrics=metrics or Metrics(),
        grace_seconds=1.0,
        holder=holder,
        incidents=incidents,
    )


async def add_channel(store: SqlNotificationStore, url: str, channel_id: str = "chn_a") -> Channel:
    now = datetime.now(UTC)
    channel = Channel(
        id=channel_id,
        tenant_id="acme",
        name="team",
        channel_type="webhook",
        url=url,
        headers={"X-Team": "sre"},
        secret=SECRET,
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    return await store.create_channel(channel)


def incident_event(event_id: str = "evt_1", channel_ids: tuple[str, ...] = ("chn_a",)) -> IncidentEvent:
    return IncidentEvent(
        id=event_id,
        type="incident.triggered",
        tenant_id="acme",
        incident_id="inc_1",
        title="High errors",
        severity="critical",
        status="triggered",
        occurred_at=datetime.now(UTC),
        actor="system",
        notify=True,
        channel_ids=list(channel_ids),
    )


async def publish(bus: MemoryEventBus, event: IncidentEvent) -> None:
    await bus.publish(incidents_subject(event.tenant_id), encode_event(event), msg_id=event.id)


async def wait_for_status(store: SqlNotificationStore, status: str, timeout: float = 10.0) -> Delivery:
    deadline = time.monotonic() + timeout
    while True:
        deliveries = await store.list_deliveries("acme", DeliveryFilter())
        if deliveries and deliveries[0].status == status:
            return deliveries[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no delivery reached {status}: {deliveries}")
        await asyncio.sleep(0.02)


def status(code: int, **headers: str) -> Callable[[], web.StreamResponse]:
    return lambda: web.Response(status=code, headers=headers)


async def test_a_receiver_failing_three_times_gets_the_same_signed_webhook_four_times(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    receiver.replies = [status(500), status(503), status(502)]
    await add_channel(store, receiver.url)
    metrics = Metrics()
    worker = make_worker(bus, store, metrics=metrics)
    await worker.start()
    try:
        await publish(bus, incident_event())
        await publish(bus, incident_event())  # a duplicate event makes no second delivery
        delivered = await wait_for_status(store, "delivered")
    finally:
        await worker.stop()
    assert len(receiver.received) == 4
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivered.id}
    assert all(verify(SECRET, r.headers, r.body) for r in receiver.received)
    assert all(
        r.headers["x-team"] == "sre" and r.headers["content-type"] == "application/json" for r in receiver.received
    )
    assert delivered.attempts == 4
    assert delivered.last_status_code == 200
    assert len(await store.list_deliveries("acme", DeliveryFilter())) == 1
    assert metrics.notify_deliveries.labels("retried")._value.get() == 3  # pyright: ignore[reportPrivateUsage]


async def test_the_last_failed_attempt_makes_the_delivery_dead_with_its_reason(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    receiver.replies = [status(500) for _ in range(5)]
    await add_channel(store, receiver.url)
    worker = make_worker(bus, store, settings=NotifySettings(**{**_fast(), "max_attempts": 3}))
    await worker.start()
    try:
        await publish(bus, incident_event())
        dead = await wait_for_status(store, "dead")
    finally:
        await worker.stop()
    assert len(receiver.received) == 3
    assert dead.last_error is not None
    assert dead.last_error.startswith("gave up after 3 attempts")


async def test_a_410_disables_the_channel_and_kills_the_delivery(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    receiver.replies = [status(410)]
    await add_channel(store, receiver.url)
    worker = make_worker(bus, store)
    await worker.start()
    try:
        await publish(bus, incident_event())
        dead = await wait_for_status(store, "dead")
        await publish(bus, incident_event("evt_2"))
        await asyncio.sleep(0.3)
    finally:
        await worker.stop()
    assert dead.last_status_code == 410
    channel = await store.get_channel("acme", "chn_a")
    assert channel is not None
    assert not channel.is_active
    assert channel.disabled_reason is not None
    assert "410" in channel.disabled_reason
    assert len(receiver.received) == 1
    assert len(await store.list_deliveries("acme", DeliveryFilter())) == 1  # the disabled channel gets nothing new


async def test_a_429_is_retried_after_its_retry_after(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    receiver.replies = [status(429, **{"Retry-After": "1"})]
    await add_channel(store, receiver.url)
    worker = make_worker(bus, store)
    await worker.start()
    try:
        await publish(bus, incident_event())
        await wait_for_status(store, "delivered")
    finally:
        await worker.stop()
    first, second = receiver.received
    assert second.arrived - first.arrived >= 0.95  # the schedule alone would retry after 0.05 s


async def test_a_long_retry_after_is_cut_to_the_configured_bound(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    receiver.replies = [status(429, **{"Retry-After": "3600"})]
    await add_channel(store, receiver.url)
    worker = make_worker(bus, store, settings=NotifySettings(**{**_fast(), "max_retry_after_seconds": 0.2}))
    await worker.start()
    try:
        await publish(bus, incident_event())
        await wait_for_status(store, "delivered", timeout=5)
    finally:
        await worker.stop()
    assert len(receiver.received) == 2


async def test_a_redirect_is_a_failed_attempt_and_is_never_followed(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    receiver.replies = [
        status(302, Location=f"http://127.0.0.1:{receiver.port}/internal"),
        status(307, Location="http://169.254.169.254/latest/meta-data/"),
    ]
    await add_channel(store, receiver.url)
    worker = make_worker(bus, store, settings=NotifySettings(**{**_fast(), "max_attempts": 2}))
    await worker.start()
    try:
        await publish(bus, incident_event())
        dead = await wait_for_status(store, "dead")
    finally:
        await worker.stop()
    assert [r.path for r in receiver.received] == ["/hook", "/hook"]
    assert dead.last_error is not None
    assert "redirect refused" in dead.last_error
    assert "169.254.169.254" in dead.last_error


async def test_an_internal_address_is_refused_at_send_time_without_an_allow_list(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    # Stored directly: the API would have refused it; this is the check before every connection.
    await add_channel(store, receiver.url)
    worker = make_worker(bus, store, policy=EgressPolicy(), settings=NotifySettings(**{**_fast(), "max_attempts": 1}))
    await worker.start()
    try:
        await publish(bus, incident_event())
        dead = await wait_for_status(store, "dead")
    finally:
        await worker.stop()
    assert receiver.received == []
    assert dead.last_error is not None
    assert "egress refused" in dead.last_error


class RebindingResolver(AbstractResolver):
    """Resolves every name to 127.0.0.1, like a DNS answer changed after the channel was created."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=0)]

    async def close(self) -> None:
        return None


async def test_a_name_rebound_to_loopback_is_refused_at_connect_time(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    await add_channel(store, f"http://hooks.rebind.test:{receiver.port}/hook")
    refusing = make_worker(
        bus,
        store,
        policy=EgressPolicy(),
        inner_resolver=RebindingResolver(),
        settings=NotifySettings(**{**_fast(), "max_attempts": 1}),
    )
    await refusing.start(consume=True, send=False)
    try:
        await publish(bus, incident_event())
        await asyncio.sleep(0.2)
        [attempted] = await refusing.run_once()
    finally:
        await refusing.stop()
    dead = await store.get_delivery("acme", attempted.id)
    assert dead is not None
    assert dead.status == "dead"
    assert dead.last_error is not None
    assert "resolves to 127.0.0.1" in dead.last_error
    assert receiver.received == []
    # The same name and resolver reach the receiver once the range is allowed: it was the check that refused.
    await store.retry_delivery("acme", attempted.id, now=datetime.now(UTC))
    allowed = make_worker(bus, store, inner_resolver=RebindingResolver())
    await allowed.start(consume=False, send=False)
    try:
        await allowed.run_once()
    finally:
        await allowed.stop()
    assert len(receiver.received) == 1


async def test_a_sender_that_dies_mid_attempt_is_taken_over_with_the_same_webhook_id(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    receiver.hang = asyncio.Event()
    await add_channel(store, receiver.url)
    dying = make_worker(bus, store, holder="dying", settings=NotifySettings(**{**_fast(), "timeout_seconds": 30}))
    await dying.start(consume=True, send=False)
    await publish(bus, incident_event())
    await asyncio.sleep(0.2)
    attempt = asyncio.create_task(dying.run_once())
    while not receiver.received:
        await asyncio.sleep(0.01)
    attempt.cancel()  # dies mid-attempt: nothing is recorded, the claim stays behind
    await asyncio.gather(attempt, return_exceptions=True)
    claimed = await store.list_deliveries("acme", DeliveryFilter(status="sending"))
    assert [d.claimed_by for d in claimed] == ["dying"]

    survivor = make_worker(bus, store, holder="survivor")
    await survivor.start(consume=False, send=True)
    try:
        delivered = await wait_for_status(store, "delivered", timeout=5)
    finally:
        await survivor.stop()
        await dying.stop()
    assert len(receiver.received) == 2
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"] == delivered.id
    assert delivered.attempts == 2


def _fast() -> dict[str, object]:
    return {name: getattr(FAST, name) for name in FAST.__struct_fields__}


async def test_two_notify_instances_send_each_delivery_once(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    await add_channel(store, receiver.url)
    await add_channel(store, receiver.url, "chn_b")
    # A claim that outlives any attempt (FAST's 1 s claim expired under load, and an expired claim is
    # retried by design: at-least-once). What is tested here is that a live claim is never shared.
    settings = NotifySettings(**{**_fast(), "claim_seconds": 30.0})
    first = make_worker(bus, store, holder="one", settings=settings)
    second = make_worker(bus, store, holder="two", settings=settings)
    await first.start()
    await second.start()
    try:
        for index in range(15):
            await publish(bus, incident_event(f"evt_{index}", ("chn_a", "chn_b")))
        deadline = time.monotonic() + 10
        while len(await store.list_deliveries("acme", DeliveryFilter(status="delivered", limit=100))) < 30:
            assert time.monotonic() < deadline, "not every delivery was delivered"
            await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 30
    assert len(set(ids)) == 30


async def test_events_without_notify_make_no_delivery_and_garbage_is_dead_lettered(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver
) -> None:
    await add_channel(store, receiver.url)
    metrics = Metrics()
    worker = make_worker(bus, store, metrics=metrics)
    await worker.start()
    try:
        comment = msgspec.structs.replace(incident_event("evt_comment"), type="incident.commented", notify=False)
        await publish(bus, comment)
        await bus.publish(incidents_subject("acme"), b"not json", msg_id="garbage")
        await publish(bus, incident_event("evt_after"))
        await wait_for_status(store, "delivered")
    finally:
        await worker.stop()
    assert [json.loads(r.body)["data"]["id"] for r in receiver.received] == ["evt_after"]
    assert len(await store.list_deliveries("acme", DeliveryFilter())) == 1
    undecodable = metrics.dead_letters.labels("notify-deliveries", "undecodable")
    assert undecodable._value.get() == 1  # pyright: ignore[reportPrivateUsage]


@pytest.fixture
async def incidents(tmp_path: Path, store: SqlNotificationStore) -> AsyncIterator[SqlIncidentStore]:
    """The incidents of the same database as `store` (which created it and the tenant)."""
    metadata = SqlMetadataStore(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
    await metadata.start()
    try:
        yield SqlIncidentStore(metadata)
    finally:
        await metadata.close()


async def open_incident(incidents: SqlIncidentStore) -> str:
    now = datetime.now(UTC)
    incident = Incident(
        id="inc_1",
        tenant_id="acme",
        title="High errors",
        severity="critical",
        status="triggered",
        created_by="system",
        created_at=now,
        updated_at=now,
    )
    entry = EntryDraft(id="tle_open", source_id="tle_open", occurred_at=now, event_type="triggered", actor="system")
    return (await incidents.create_incident(incident, entry)).incident.id


async def delivery_failures(incidents: SqlIncidentStore, incident_id: str) -> list[TimelineEntry]:
    return [entry for entry in await incidents.timeline("acme", incident_id) if entry.event_type == "delivery_failed"]


async def test_a_failing_delivery_is_on_the_timeline_at_its_first_failure_and_when_it_gives_up(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver, incidents: SqlIncidentStore
) -> None:
    receiver.replies = [lambda: web.Response(status=500, text="internal secret page") for _ in range(5)]
    await add_channel(store, receiver.url)
    incident_id = await open_incident(incidents)
    worker = make_worker(bus, store, settings=NotifySettings(**{**_fast(), "max_attempts": 4}), incidents=incidents)
    await worker.start()
    try:
        await publish(bus, incident_event())
        dead = await wait_for_status(store, "dead")
    finally:
        await worker.stop()
    assert len(receiver.received) == 4
    failures = await delivery_failures(incidents, incident_id)
    assert [(entry.data["attempt"], entry.data["final"]) for entry in failures] == [(1, False), (4, True)]
    for entry in failures:
        assert entry.actor == "system"
        assert entry.data["target"] == {"type": "channel", "id": "chn_a"}
        assert entry.data["delivery_id"] == dead.id
        assert entry.data["status_code"] == 500
        assert entry.content is not None
        assert "channel chn_a" in entry.content
        assert "the receiver answered 500" in entry.content
        assert "internal secret page" not in entry.content  # a loopback receiver's body is never echoed
    assert "retried at" in str(failures[0].content)
    assert "gave up after attempt 4" in str(failures[1].content)


async def test_a_delivery_that_succeeds_on_retry_leaves_one_failure_entry(
    bus: MemoryEventBus, store: SqlNotificationStore, receiver: Receiver, incidents: SqlIncidentStore
) -> None:
    receiver.replies = [status(503), status(503)]
    await add_channel(store, receiver.url)
    incident_id = await open_incident(incidents)
    worker = make_worker(bus, store, incidents=incidents)
    await worker.start()
    try:
        await publish(bus, incident_event())
        await wait_for_status(store, "delivered")
    finally:
        await worker.stop()
    failures = await delivery_failures(incidents, incident_id)
    assert [(entry.data["attempt"], entry.data["final"]) for entry in failures] == [(1, False)]
