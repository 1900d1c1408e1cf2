"""A monitor's incident end to end in one `mintlog run` process on embedded defaults: the monitor names a webhook
channel and a linked service whose error logs were ingested; its target goes down → one incident whose timeline
shows the failing check and the service's log summary, and one signed `incident.triggered` webhook; the target
back up → the incident resolves with a signed `incident.resolved` webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import MintlogProcess
from tests.e2e.receiver import WebhookReceiver
from tests.e2e.test_incident_flow import verify_standard_webhook
from tests.e2e.test_uptime_process import FlippableTarget, api, wait_until

pytestmark = pytest.mark.e2e

SECRET = "monitor-secret"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[MintlogProcess, str, FlippableTarget, WebhookReceiver]]:
    with FlippableTarget() as target, WebhookReceiver() as receiver:
        process = MintlogProcess(
            data_dir=tmp_path / "data",
            extra_env={
                "MINTLOG_EGRESS_ALLOW": "127.0.0.0/8",
                "MINTLOG_UPTIME__MIN_INTERVAL_SECONDS": "1",
                "MINTLOG_UPTIME__POLL_SECONDS": "0.1",
            },
        )
        try:
            process.start()
            yield process, process.bootstrap("acme"), target, receiver
        finally:
            process.cleanup()


def test_a_down_monitor_notifies_its_channel_with_the_linked_services_logs_in_the_timeline(
    running: tuple[MintlogProcess, str, FlippableTarget, WebhookReceiver],
) -> None:
    mintlog, key, target, receiver = running
    channel = api(
        mintlog,
        key,
        "POST",
        "/v1/notifications/channels",
        {"name": "ops", "channel_type": "webhook", "config": {"url": receiver.url, "secret": SECRET}},
    )
    assert channel.status_code == 201, channel.text
    errors = [{"service": "checkout", "level": "error", "message": "db connection refused"}] * 4
    errors += [{"service": "checkout", "level": "error", "message": "payment gateway timeout"}] * 2
    noise = [{"service": "checkout", "level": "info", "message": "order placed"}] * 3
    other = [{"service": "search", "level": "error", "message": "not this service"}]
    assert mintlog.ingest(key, {"events": errors + noise + other}).status_code == 202
    mintlog.wait_for_total(key, {"query": "service:checkout", "from": "now-1h"}, 9)

    created = api(
        mintlog,
        key,
        "POST",
        "/v1/uptime/monitors",
        {
            "name": "checkout",
            "check": {"type": "http", "url": target.url},
            "interval_seconds": 1,
            "timeout_seconds": 0.5,
            "down_after": 2,
            "channel_ids": [channel.json()["id"]],
            "linked_service": "checkout",
            "log_window_minutes": 30,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["linked_service"] == "checkout"
    monitor_path = f"/v1/uptime/monitors/{created.json()['id']}"

    def state() -> str:
        return api(mintlog, key, "GET", monitor_path).json()["status"]["state"]

    assert wait_until(lambda: state() == "up"), mintlog.logs()
    target.status = 503
    webhooks = receiver.wait_for(1, timeout_seconds=60)
    assert len(webhooks) == 1, mintlog.logs()
    triggered = json.loads(webhooks[0].body)
    assert triggered["type"] == "incident.triggered"
    assert "checkout" in json.dumps(triggered["data"])
    assert verify_standard_webhook(webhooks[0], SECRET)

    incidents = api(mintlog, key, "GET", "/v1/incidents", status="triggered").json()["items"]
    assert len(incidents) == 1
    incident = api(mintlog, key, "GET", f"/v1/incidents/{incidents[0]['id']}").json()
    context: dict[str, Any] = incident["timeline"][0]["data"]["context"]
    assert context["check"]["type"] == "http"
    assert context["check"]["target"] == target.url
    assert context["check"]["status_code"] == 503
    assert "503" in context["check"]["error"]
    logs = context["logs"]
    assert logs["available"] is True
    assert logs["by_level"] == {"error": 6, "info": 3}
    assert logs["top_errors"] == [
        {"message": "db connection refused", "count": 4},
        {"message": "payment gateway timeout", "count": 2},
    ]
    # The search request it gives finds exactly the summarized events.
    found = mintlog.search(key, logs["search"])
    assert found.status_code == 200, found.text
    assert found.json()["total"] == 9

    target.status = 200
    webhooks = receiver.wait_for(2, timeout_seconds=60)
    assert [json.loads(webhook.body)["type"] for webhook in webhooks] == ["incident.triggered", "incident.resolved"]
    assert verify_standard_webhook(webhooks[1], SECRET)
    resolved = api(mintlog, key, "GET", f"/v1/incidents/{incidents[0]['id']}").json()
    assert resolved["status"] == "resolved"
