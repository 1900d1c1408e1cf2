"""Email, chat and person deliveries through the real delivery worker and store (SQLite and PostgreSQL), a real
SMTP server (aiosmtpd) and a real HTTP receiver:

- an incident event to an email channel whose SMTP server first answers 451 then recovers: retried, then
  delivered, with the incident title in the subject; a 550 makes the delivery dead at once;
- `StoredPersonNotifier`: the delivery is persisted when `notify` returns, the same dedup_key returns the first
  id and stores nothing more, and it reaches the person by email (the operator's relay) and by chat webhook,
  visible in the delivery log with the person's id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.db.notifications_sql import SqlNotificationStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.adapters.http.egress_aiohttp import AiohttpOutboundHttp
from mintlog.adapters.smtp.smtp_aiosmtplib import AiosmtplibSmtpSender
from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.channels import Channel, DeliveryFilter, EmailSettings
from mintlog.domain.egress import EgressPolicy
from mintlog.domain.oncall_people import ContactMethod, Person
from mintlog.domain.tenants import Tenant
from mintlog.metrics import Metrics
from mintlog.ports.person_notify import PersonMessage
from mintlog.roles.notify.delivery_worker import DeliveryWorker, deliveries_for
from mintlog.roles.notify.person_notifier import StoredPersonNotifier
from mintlog.settings import NotifySettings, PipelineSettings, SmtpRelaySettings
from tests.e2e.receiver import WebhookReceiver
from tests.smtp_server import SmtpTestServer

LOOPBACK = EgressPolicy.from_setting(["127.0.0.0/8"])
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def settings(relay_port: int = 0) -> NotifySettings:
    return NotifySettings(
        max_attempts=5,
        retry_delays_seconds=(0.05,),
        retry_jitter=0.0,
        timeout_seconds=5.0,
        claim_seconds=30.0,
        poll_interval_seconds=0.05,
        smtp=SmtpRelaySettings(
            host="127.0.0.1" if relay_port else "", port=relay_port, security="none", from_address="oncall@mintlog.test"
        ),
    )


@pytest.fixture
async def notifications(database_url: str) -> AsyncIterator[SqlNotificationStore]:
    metadata = SqlMetadataStore(database_url)
    await metadata.start()
    await metadata.create_tenant(Tenant(id="acme", name="Acme", created_at=NOW))
    try:
        yield SqlNotificationStore(metadata)
    finally:
        await metadata.close()


@pytest.fixture
async def outbound() -> AsyncIterator[AiohttpOutboundHttp]:
    client = AiohttpOutboundHttp(LOOPBACK)
    try:
        yield client
    finally:
        await client.close()


def worker(store: SqlNotificationStore, outbound: AiohttpOutboundHttp, notify: NotifySettings) -> DeliveryWorker:
    return DeliveryWorker(
        bus=MemoryEventBus(),
        notifications=store,
        outbound=outbound,
        smtp=AiosmtplibSmtpSender(LOOPBACK),
        settings=notify,
        pipeline=PipelineSettings(),
        metrics=Metrics(),
        grace_seconds=1.0,
    )


def email_channel(port: int) -> Channel:
    return Channel(
        id="chn_mail",
        tenant_id="acme",
        name="oncall-mail",
        channel_type="email",
        url="",
        headers={},
        secret="",
        is_active=True,
        created_at=NOW,
        updated_at=NOW,
        email=EmailSettings(
            host="127.0.0.1",
            port=port,
            security="none",
            from_address="mintlog@example.com",
            recipients=["oncall@example.com", "sre@example.com"],
        ),
    )


def triggered(event_id: str) -> IncidentEvent:
    return IncidentEvent(
        id=event_id,
        type="incident.triggered",
        tenant_id="acme",
        incident_id="inc_1",
        title="checkout is failing",
        severity="critical",
        status="triggered",
        occurred_at=NOW,
        actor="system",
        notify=True,
        channel_ids=["chn_mail"],
    )


async def run_until(worker: DeliveryWorker, store: SqlNotificationStore, delivery_id: str, status: str) -> str:
    for _ in range(100):
        await worker.run_once()
        delivery = await store.get_delivery("acme", delivery_id)
        assert delivery is not None
        if delivery.status == status:
            return delivery.status
        await asyncio.sleep(0.06)
    raise AssertionError(f"delivery {delivery_id} never became {status}")


async def test_an_email_channel_delivery_is_retried_after_a_4xx_and_delivered(
    notifications: SqlNotificationStore, outbound: AiohttpOutboundHttp
) -> None:
    with SmtpTestServer(["451 4.3.0 try later", "421 4.3.2 shutting down"]) as server:
        await notifications.create_channel(email_channel(server.port))
        [delivery] = deliveries_for(triggered("evt_1"), ["chn_mail"], now=NOW)
        await notifications.enqueue_deliveries([delivery])
        await run_until(worker(notifications, outbound, settings()), notifications, delivery.id, "delivered")
        [received] = server.wait_for(1)
    stored = await notifications.get_delivery("acme", delivery.id)
    assert stored is not None
    assert stored.attempts == 3
    assert received.recipients == ["oncall@example.com", "sre@example.com"]
    assert received.message["Subject"] == "[CRITICAL] Incident triggered: checkout is failing"


async def test_a_5xx_reply_makes_the_delivery_dead_at_once(
    notifications: SqlNotificationStore, outbound: AiohttpOutboundHttp
) -> None:
    with SmtpTestServer(["550 5.1.1 no such mailbox"]) as server:
        await notifications.create_channel(email_channel(server.port))
        [delivery] = deliveries_for(triggered("evt_2"), ["chn_mail"], now=NOW)
        await notifications.enqueue_deliveries([delivery])
        await run_until(worker(notifications, outbound, settings()), notifications, delivery.id, "dead")
        assert server.data_commands == 1
    stored = await notifications.get_delivery("acme", delivery.id)
    assert stored is not None
    assert stored.attempts == 1
    assert stored.last_status_code == 550
    assert (stored.last_error or "").startswith("permanent failure: the SMTP server answered 550")


PERSON = Person(
    id="per_ada",
    tenant_id="acme",
    name="Ada",
    email="ada@example.com",
    time_zone="Europe/Berlin",
    contact_methods=[],
    notification_rules=[],
    created_at=NOW,
    updated_at=NOW,
)
MESSAGE = PersonMessage(
    incident_id="inc_1",
    title="checkout is failing",
    severity="critical",
    source="high-errors",
    summary="6 errors in 1m",
    acknowledge_url="https://mintlog.example/ack/abc",
)


async def test_a_person_notification_is_persisted_once_per_dedup_key_and_delivered_by_email_and_chat(
    notifications: SqlNotificationStore, outbound: AiohttpOutboundHttp
) -> None:
    with SmtpTestServer() as relay, WebhookReceiver() as chat:
        sender = worker(notifications, outbound, settings(relay.port))
        notifier = StoredPersonNotifier(notifications, metrics=Metrics())
        by_email = ContactMethod(id="cm_mail", type="email", address="ada@example.com")
        by_chat = ContactMethod(id="cm_chat", type="chat_webhook", address=f"{chat.url}/slack")
        first = await notifier.notify("acme", PERSON, by_email, MESSAGE, dedup_key="inc_1:step1:per_ada:cm_mail")
        again = await notifier.notify("acme", PERSON, by_email, MESSAGE, dedup_key="inc_1:step1:per_ada:cm_mail")
        assert again == first
        stored = await notifications.get_delivery("acme", first)
        assert stored is not None
        assert stored.status == "pending"
        chat_id = await notifier.notify("acme", PERSON, by_chat, MESSAGE, dedup_key="inc_1:step1:per_ada:cm_chat")
        await run_until(sender, notifications, first, "delivered")
        await run_until(sender, notifications, chat_id, "delivered")
        [mail] = relay.wait_for(1)
        [posted] = chat.wait_for(1, 30)
    assert mail.recipients == ["ada@example.com"]
    assert mail.mail_from == "oncall@mintlog.test"
    assert mail.message["Subject"] == "[CRITICAL] Incident needs you: checkout is failing"
    assert "https://mintlog.example/ack/abc" in mail.part("plain")
    assert "Source: high-errors" in mail.part("plain")
    slack = json.loads(posted.body)
    assert slack["text"] == "[CRITICAL] Incident needs you: checkout is failing"
    assert slack["blocks"][-1]["elements"][0]["url"] == "https://mintlog.example/ack/abc"
    logged = await notifications.list_deliveries("acme", DeliveryFilter(person_id="per_ada"))
    assert sorted(delivery.id for delivery in logged) == sorted([first, chat_id])
    assert {delivery.contact.type for delivery in logged if delivery.contact} == {"email", "chat_webhook"}
    assert all(delivery.channel_id is None for delivery in logged)


async def test_without_a_relay_a_person_email_fails_and_is_retried(
    notifications: SqlNotificationStore, outbound: AiohttpOutboundHttp
) -> None:
    notifier = StoredPersonNotifier(notifications, metrics=Metrics())
    method = ContactMethod(id="cm_mail", type="email", address="ada@example.com")
    delivery_id = await notifier.notify("acme", PERSON, method, MESSAGE, dedup_key="k1")
    await run_until(worker(notifications, outbound, settings()), notifications, delivery_id, "failed")
    stored = await notifications.get_delivery("acme", delivery_id)
    assert stored is not None
    assert "MINTLOG_NOTIFY__SMTP__HOST" in (stored.last_error or "")
