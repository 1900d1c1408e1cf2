"""One delivery attempt of the notify role's sender through the outbound HTTP port (a fake: no network): what
it sends, and how the answer becomes the delivery's outcome. The real client is exercised in
tests/integration/test_delivery_worker.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.domain.channels import Channel, Delivery, DeliveryOutcome
from mintlog.domain.webhooks import verify
from mintlog.metrics import Metrics
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.outbound import AttemptResult
from mintlog.roles.notify.delivery_worker import DeliveryWorker
from mintlog.settings import NotifySettings, PipelineSettings
from tests.fakes import FakeOutboundHttp, FakeSmtpSender

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
SETTINGS = NotifySettings(
    timeout_seconds=7.0, max_attempts=5, retry_delays_seconds=(5.0,), retry_jitter=0.0, max_retry_after_seconds=60.0
)
CHANNEL = Channel(
    id="chn_a",
    tenant_id="acme",
    name="ops",
    channel_type="webhook",
    url="https://hooks.example/incidents",
    headers={"Authorization": "Bearer token"},
    secret="whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
    is_active=True,
    created_at=NOW,
    updated_at=NOW,
)
DELIVERY = Delivery(
    id="dlv_1",
    tenant_id="acme",
    channel_id="chn_a",
    event_id="evt_1",
    event_type="incident.opened",
    incident_id="inc_1",
    payload=b'{"type":"incident.opened"}',
    status="sending",
    attempts=1,
    round_attempts=1,
    next_attempt_at=NOW,
    created_at=NOW,
)


class FakeNotifications:
    """The two methods an attempt uses: the channel, and the recorded outcomes."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.outcomes: list[DeliveryOutcome] = []

    async def get_channel(self, tenant_id: str, channel_id: str) -> Channel | None:
        return self.channel if (tenant_id, channel_id) == (self.channel.tenant_id, self.channel.id) else None

    async def record_outcome(self, delivery_id: str, holder: str, outcome: DeliveryOutcome) -> bool:
        self.outcomes.append(outcome)
        return True


@pytest.fixture
async def bus() -> AsyncIterator[MemoryEventBus]:
    memory = MemoryEventBus()
    await memory.start()
    try:
        yield memory
    finally:
        await memory.close()


def _worker(bus: MemoryEventBus, store: FakeNotifications, outbound: FakeOutboundHttp) -> DeliveryWorker:
    return DeliveryWorker(
        bus=bus,
        notifications=cast("NotificationStore", cast("Any", store)),
        outbound=outbound,
        smtp=FakeSmtpSender(),
        settings=SETTINGS,
        pipeline=PipelineSettings(),
        metrics=Metrics(),
        grace_seconds=1.0,
        clock=lambda: NOW,
    )


async def test_an_attempt_posts_the_signed_payload_once_through_the_outbound_port(bus: MemoryEventBus) -> None:
    store, outbound = FakeNotifications(CHANNEL), FakeOutboundHttp()
    await _worker(bus, store, outbound).attempt(DELIVERY)
    [sent] = outbound.sent
    assert (sent.method, sent.url, sent.body, sent.timeout_seconds) == ("POST", CHANNEL.url, DELIVERY.payload, 7.0)
    assert sent.headers["Authorization"] == "Bearer token"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["webhook-id"] == DELIVERY.id
    assert verify(CHANNEL.secret, sent.headers, DELIVERY.payload, now=int(NOW.timestamp()))
    [outcome] = store.outcomes
    assert (outcome.status, outcome.status_code, outcome.error) == ("delivered", 200, None)


@pytest.mark.parametrize(
    ("answer", "status", "next_attempt_at", "disabled"),
    [
        (AttemptResult(410, 0.1, "the receiver answered 410"), "dead", None, True),
        (
            AttemptResult(429, 0.1, "the receiver answered 429", retry_after_seconds=30.0),
            "failed",
            NOW + 30 * SECOND,
            False,
        ),
        (AttemptResult(None, 0.0, "egress refused: address 10.0.0.7 is refused"), "failed", NOW + 5 * SECOND, False),
    ],
)
async def test_the_answer_decides_the_outcome(
    bus: MemoryEventBus, answer: AttemptResult, status: str, next_attempt_at: datetime | None, disabled: bool
) -> None:
    store, outbound = FakeNotifications(CHANNEL), FakeOutboundHttp([answer])
    await _worker(bus, store, outbound).attempt(DELIVERY)
    [outcome] = store.outcomes
    assert outcome.status == status
    assert outcome.error is not None
    assert answer.error is not None
    assert outcome.error.startswith(answer.error)
    assert outcome.next_attempt_at == next_attempt_at
    assert (outcome.disable_channel is not None) is disabled


async def test_a_disabled_channel_gets_no_request(bus: MemoryEventBus) -> None:
    store = FakeNotifications(Channel(**{**_fields(CHANNEL), "is_active": False, "disabled_reason": "410 Gone"}))
    outbound = FakeOutboundHttp()
    await _worker(bus, store, outbound).attempt(DELIVERY)
    assert outbound.sent == []
    assert [outcome.status for outcome in store.outcomes] == ["dead"]


def _fields(channel: Channel) -> dict[str, Any]:
    return {name: getattr(channel, name) for name in channel.__struct_fields__}
