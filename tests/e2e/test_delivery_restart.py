"""A webhook delivery survives `kill -9` of the `mintlog run` process between two attempts: after the restart
the scheduled retry is made, with the same webhook-id, and the delivery is delivered."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mintlog.adapters.db.notifications_sql import SqlNotificationStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.webhooks import verify
from mintlog.roles.notify.delivery_worker import deliveries_for
from tests.e2e.harness import MintlogProcess
from tests.e2e.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

SECRET = "mysecret"


async def enqueue(database: Path, channel_id: str) -> str:
    """Insert a delivery as the delivery worker would for an `incident.triggered` of this channel."""
    metadata = SqlMetadataStore(f"sqlite+aiosqlite:///{database}", migrate_on_start=False)
    await metadata.start()
    try:
        event = IncidentEvent(
            id="evt_restart",
            type="incident.triggered",
            tenant_id="acme",
            incident_id="inc_restart",
            title="High errors",
            severity="critical",
            status="triggered",
            occurred_at=datetime.now(UTC),
            actor="system",
            notify=True,
            channel_ids=[channel_id],
        )
        [delivery] = deliveries_for(event, [channel_id], now=datetime.now(UTC))
        assert await SqlNotificationStore(metadata).enqueue_deliveries([delivery]) == 1
        return delivery.id
    finally:
        await metadata.close()


def test_a_delivery_is_retried_after_kill_9_and_a_restart(tmp_path: Path) -> None:
    with WebhookReceiver(statuses=[500]) as receiver:
        mintlog = MintlogProcess(
            data_dir=tmp_path / "data",
            extra_env={
                "MINTLOG_EGRESS_ALLOW": "127.0.0.0/8",
                "MINTLOG_NOTIFY__RETRY_DELAYS_SECONDS": "3",
                "MINTLOG_NOTIFY__RETRY_JITTER": "0",
                "MINTLOG_NOTIFY__POLL_INTERVAL_SECONDS": "0.2",
                "MINTLOG_NOTIFY__CLAIM_SECONDS": "4",
            },
        )
        try:
            mintlog.start()
            key = mintlog.bootstrap("acme")
            created = httpx.post(
                f"{mintlog.api_url}/v1/notifications/channels",
                json={"name": "team", "channel_type": "webhook", "config": {"url": receiver.url, "secret": SECRET}},
                headers={"X-API-Key": key},
                timeout=30,
            )
            assert created.status_code == 201, created.text
            delivery_id = asyncio.run(enqueue(tmp_path / "data" / "mintlog.db", created.json()["id"]))

            assert len(receiver.wait_for(1, timeout_seconds=10)) == 1, mintlog.logs()
            # Killed right after the first attempt: either its failure was recorded (the retry is due 3 s later)
            # or the process died first and left its claim behind (taken over once it expires, after 4 s).
            mintlog.kill9()
            killed_at = time.monotonic()
            time.sleep(0.5)
            assert len(receiver.received) == 1

            mintlog.start()
            webhooks = receiver.wait_for(2, timeout_seconds=20)
            assert len(webhooks) == 2, mintlog.logs()
            assert webhooks[1].arrived - killed_at >= 2.0  # persisted schedule or claim, not an immediate resend
            assert webhooks[0].headers["webhook-id"] == webhooks[1].headers["webhook-id"] == delivery_id
            assert all(verify(SECRET, webhook.headers, webhook.body) for webhook in webhooks)

            deadline = time.monotonic() + 10
            delivery: dict[str, object] = {}
            while time.monotonic() < deadline:
                listed = httpx.get(
                    f"{mintlog.api_url}/v1/notifications/deliveries", headers={"X-API-Key": key}, timeout=30
                )
                delivery = listed.json()["items"][0]
                if delivery["status"] == "delivered":
                    break
                time.sleep(0.2)
            assert delivery["status"] == "delivered", delivery
            assert delivery["attempts"] == 2
        finally:
            mintlog.cleanup()
