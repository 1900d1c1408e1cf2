"""On-call end to end in a real `mintlog run` on embedded defaults, with a real SMTP server (aiosmtpd): people,
a schedule, an escalation policy whose first step is the schedule and whose second is a person; the alert fires
→ the person on call gets an email → nobody acknowledges → the second person gets one after the step's delay →
the acknowledge link in that email (no API key) acknowledges → the third step is never sent, and the timeline
says who acknowledged."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.harness import MintlogProcess
from tests.smtp_server import ReceivedEmail, SmtpTestServer

_ACTION_LINK = re.compile(r"https?://[^\s\"<>]+/oncall/actions/[A-Za-z0-9_\-.~%]+")


def api(mintlog: MintlogProcess, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{mintlog.api_url}{path}", json=body, headers={"X-API-Key": key}, timeout=30)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()


def action_links(received: ReceivedEmail) -> list[str]:
    return _ACTION_LINK.findall(received.part("plain"))


def sent_to(server: SmtpTestServer, address: str) -> list[ReceivedEmail]:
    return [received for received in server.received if address in received.recipients]


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def mintlog(tmp_path: Path, smtp: SmtpTestServer) -> Iterator[MintlogProcess]:
    process = MintlogProcess(
        data_dir=tmp_path / "data",
        extra_env={
            "MINTLOG_NOTIFY__SMTP__HOST": "127.0.0.1",
            "MINTLOG_NOTIFY__SMTP__PORT": str(smtp.port),
            "MINTLOG_NOTIFY__SMTP__SECURITY": "none",
            "MINTLOG_NOTIFY__SMTP__FROM_ADDRESS": "oncall@mintlog.test",
        },
    )
    process.extra_env["MINTLOG_ESCALATION__PUBLIC_URL"] = process.api_url
    try:
        process.start()
        yield process
    finally:
        process.cleanup()


@pytest.mark.timeout(300)  # a start, an alert, two steps with their delay, and a wait for a step that never comes
def test_the_person_on_call_is_emailed_then_the_next_one_whose_link_acknowledges(
    mintlog: MintlogProcess, smtp: SmtpTestServer
) -> None:
    key = mintlog.bootstrap("acme")
    ann = created(api(mintlog, key, "POST", "/v1/oncall/people", {"name": "Ann", "email": "ann@example.com"}))
    bob = created(
        api(
            mintlog,
            key,
            "POST",
            "/v1/oncall/people",
            {"name": "Bob", "email": "bob@example.com", "time_zone": "America/New_York"},
        )
    )
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    schedule = created(
        api(
            mintlog,
            key,
            "POST",
            "/v1/oncall/schedules",
            {
                "name": "primary",
                "time_zone": "UTC",
                "layers": [{"participants": [ann["id"]], "turn": "weekly", "rotation_start": yesterday}],
            },
        )
    )
    on_call = api(mintlog, key, "GET", f"/v1/oncall/schedules/{schedule['id']}/on-call")
    assert on_call.status_code == 200, on_call.text
    assert ann["id"] in on_call.text

    policy = created(
        api(
            mintlog,
            key,
            "POST",
            "/v1/oncall/escalation-policies",
            {
                "name": "payments",
                "steps": [
                    {"targets": [{"type": "schedule", "id": schedule["id"]}]},
                    {"delay_minutes": 0.1, "targets": [{"type": "person", "id": bob["id"]}]},
                    {"delay_minutes": 0.1, "targets": [{"type": "person", "id": ann["id"]}]},
                ],
            },
        )
    )
    rule = created(
        api(
            mintlog,
            key,
            "POST",
            "/v1/alerts/rules",
            {
                "name": "payments failing",
                "query": {"level": "error"},
                "threshold": 0,
                "window_seconds": 300,
                "interval_seconds": 5,
                "escalation_policy_id": policy["id"],
            },
        )
    )
    errors = [{"service": "payments", "level": "error", "message": "card declined"}]
    assert mintlog.ingest(key, {"events": errors}).status_code == 202

    first = smtp.wait_for(1, timeout=90)[0]
    assert first.recipients == ["ann@example.com"]
    assert "payments failing" in str(first.message["Subject"])
    assert action_links(first), first.part("plain")

    deadline = time.monotonic() + 90
    while not sent_to(smtp, "bob@example.com") and time.monotonic() < deadline:
        time.sleep(0.5)
    (to_bob,) = sent_to(smtp, "bob@example.com")
    acknowledge = action_links(to_bob)[0]  # "Acknowledge: …" comes first, then "Resolve: …"
    incidents = api(mintlog, key, "GET", "/v1/incidents").json()["items"]
    (incident,) = [item for item in incidents if item.get("rule_id") == rule["id"]]
    assert incident["status"] == "triggered"
    # Bob reads the incident's trigger time in his own zone; Ann (no zone given) in UTC.
    triggered_at = datetime.fromisoformat(incident["created_at"])
    in_new_york = triggered_at.astimezone(ZoneInfo("America/New_York"))
    expected = f"Triggered: {in_new_york:%Y-%m-%d %H:%M} {in_new_york.tzname()} (America/New_York)"
    assert expected in to_bob.part("plain"), to_bob.part("plain")
    assert f"Triggered: {triggered_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC\r\n" in first.part("plain")

    acted = httpx.post(acknowledge, timeout=30)
    assert acted.status_code == 200, acted.text
    assert acted.json()["status"] == "acknowledged"

    time.sleep(15)  # the third step (Ann again) was due 6 s after Bob's: the acknowledgement stopped it
    assert len(sent_to(smtp, "ann@example.com")) == 1
    assert len(sent_to(smtp, "bob@example.com")) == 1
    detail = api(mintlog, key, "GET", f"/v1/incidents/{incident['id']}").json()
    assert detail["status"] == "acknowledged"
    assert detail["acknowledged_by"] == f"person:{bob['id']}"
    types = [entry["event_type"] for entry in detail["timeline"]]
    assert types.count("escalation_step") == 2
    assert types.count("notified") == 2
