"""The incident flow end to end on embedded defaults, in one `mintlog run` process: an alert rule and a webhook
channel; six error events → exactly one signed webhook and one incident with its timeline; acknowledge → a
webhook; the alert resolves → the incident resolves with a last webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess
from tests.e2e.receiver import ReceivedWebhook, WebhookReceiver

SECRET = "mysecret"


def verify_standard_webhook(webhook: ReceivedWebhook, secret: str) -> bool:
    """Standard Webhooks verification, written here independently of Mintlog's signer."""
    webhook_id = webhook.headers["webhook-id"]
    timestamp = webhook.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    signed = f"{webhook_id}.{timestamp}.".encode() + webhook.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in webhook.headers["webhook-signature"].split() if "," in part]
    return any(hmac.compare_digest(expected, signature) for signature in offered)


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[tuple[MintlogProcess, str, WebhookReceiver]]:
    with WebhookReceiver() as receiver:
        process = MintlogProcess(
            data_dir=tmp_path / "data",
            extra_env={"MINTLOG_EGRESS_ALLOW": "127.0.0.0/8"},
        )
        try:
            process.start()
            yield process, process.bootstrap("acme"), receiver
        finally:
            process.cleanup()


def api(mintlog: MintlogProcess, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{mintlog.api_url}{path}", json=body, headers={"X-API-Key": key}, timeout=30)


def event_types(webhooks: list[ReceivedWebhook]) -> list[str]:
    return [json.loads(webhook.body)["type"] for webhook in webhooks]


def wait_for_incident_status(mintlog: MintlogProcess, key: str, incident_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    incident: dict[str, Any] = {}
    while time.monotonic() < deadline:
        incident = api(mintlog, key, "GET", f"/v1/incidents/{incident_id}").json()
        if incident["status"] == status:
            return incident
        time.sleep(0.2)
    return incident


def test_six_errors_make_one_signed_webhook_and_one_incident_then_it_resolves(
    flow: tuple[MintlogProcess, str, WebhookReceiver],
) -> None:
    mintlog, key, receiver = flow
    channel = api(
        mintlog,
        key,
        "POST",
        "/v1/notifications/channels",
        {"name": "team", "channel_type": "webhook", "config": {"url": receiver.url, "secret": SECRET}},
    )
    assert channel.status_code == 201, channel.text
    assert SECRET not in channel.text
    rule = api(
        mintlog,
        key,
        "POST",
        "/v1/alerts/rules",
        {
            "name": "high-errors",
            "query": {"level": "error"},
            "threshold": 5,
            "window_seconds": 300,
            "interval_seconds": 5,
            "channel_ids": [channel.json()["id"]],
        },
    )
    assert rule.status_code == 201, rule.text
    rule_id = rule.json()["id"]

    errors = [{"service": "checkout", "level": "error", "message": f"payment failed #{n}"} for n in range(6)]
    noise = [{"service": "checkout", "level": "info", "message": "ok"} for _ in range(20)]
    assert mintlog.ingest(key, {"events": errors[:5] + noise}).status_code == 202
    time.sleep(7)  # a full interval with exactly five errors: not above the threshold
    assert receiver.received == []
    assert mintlog.ingest(key, {"events": errors[5:]}).status_code == 202

    webhooks = receiver.wait_for(1, timeout_seconds=20)
    assert len(webhooks) == 1, mintlog.logs()
    time.sleep(6)  # later evaluations of the still-firing rule send nothing more
    assert len(receiver.received) == 1
    first = receiver.received[0]
    assert verify_standard_webhook(first, SECRET)
    payload = json.loads(first.body)
    assert payload["type"] == "incident.triggered"

    listed = api(mintlog, key, "GET", "/v1/incidents?status=triggered")
    assert listed.status_code == 200, listed.text
    incidents = listed.json()["items"]
    assert len(incidents) == 1
    incident_id = incidents[0]["id"]
    assert incidents[0]["severity"]
    detail = api(mintlog, key, "GET", f"/v1/incidents/{incident_id}").json()
    assert detail["status"] == "triggered"
    assert detail["timeline"][0]["actor"] == "system"

    acknowledged = api(mintlog, key, "PATCH", f"/v1/incidents/{incident_id}", {"status": "acknowledged"})
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["acknowledged_at"]
    assert len(receiver.wait_for(2, timeout_seconds=15)) == 2
    assert event_types(receiver.received)[1] == "incident.acknowledged"

    # Raising the threshold above the count resolves the alert, and the rule resolves its incident.
    raised = api(mintlog, key, "PUT", f"/v1/alerts/rules/{rule_id}", {"threshold": 100})
    assert raised.status_code == 200, raised.text
    resolved = wait_for_incident_status(mintlog, key, incident_id, "resolved")
    assert resolved["status"] == "resolved", resolved
    assert resolved["time_to_resolve_seconds"] >= resolved["time_to_acknowledge_seconds"] >= 0
    webhooks = receiver.wait_for(3, timeout_seconds=15)
    assert event_types(webhooks) == ["incident.triggered", "incident.acknowledged", "incident.resolved"]
    assert all(verify_standard_webhook(webhook, SECRET) for webhook in webhooks)
    assert len({webhook.headers["webhook-id"] for webhook in webhooks}) == 3
    timeline_types = [entry["event_type"] for entry in resolved["timeline"]]
    assert timeline_types[0] in {"triggered", "incident.triggered", "alert_fired", "opened"}
    assert len(timeline_types) >= 3
