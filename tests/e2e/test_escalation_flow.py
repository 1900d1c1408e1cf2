"""Escalation end to end in real `mintlog run` processes on embedded defaults: an alert rule names a policy of
channel steps; the alert fires → step 1's channel gets a signed `incident.escalated` webhook → nobody
acknowledges → step 2 after its delay → its one-click link acknowledges (GET does not, a second POST is 410)
→ no later step is sent; the stats endpoint counts it. And a kill -9 between two steps neither skips nor
repeats one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess
from tests.e2e.receiver import ReceivedWebhook, WebhookReceiver
from tests.e2e.test_incident_flow import verify_standard_webhook

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="


def api(mintlog: MintlogProcess, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{mintlog.api_url}{path}", json=body, headers={"X-API-Key": key}, timeout=30)


def escalated(webhooks: list[ReceivedWebhook]) -> list[dict[str, Any]]:
    """The `incident.escalated` bodies, one per distinct webhook-id (a retried delivery counts once)."""
    seen: dict[str, dict[str, Any]] = {}
    for webhook in webhooks:
        body = json.loads(webhook.body)
        if body["type"] == "incident.escalated":
            seen.setdefault(webhook.headers["webhook-id"], body)
    return list(seen.values())


def channel(mintlog: MintlogProcess, key: str, name: str, url: str) -> str:
    created = api(
        mintlog,
        key,
        "POST",
        "/v1/notifications/channels",
        {"name": name, "channel_type": "webhook", "config": {"url": url, "secret": SECRET}},
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def firing_rule(mintlog: MintlogProcess, key: str, policy_id: str) -> str:
    rule = api(
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
            "escalation_policy_id": policy_id,
        },
    )
    assert rule.status_code == 201, rule.text
    assert rule.json()["escalation_policy_id"] == policy_id
    errors = [{"service": "payments", "level": "error", "message": "card declined"}]
    assert mintlog.ingest(key, {"events": errors}).status_code == 202
    return rule.json()["id"]


def new_process(data_dir: Path) -> MintlogProcess:
    process = MintlogProcess(data_dir=data_dir, extra_env={"MINTLOG_EGRESS_ALLOW": "127.0.0.0/8"})
    process.extra_env["MINTLOG_ESCALATION__PUBLIC_URL"] = process.api_url
    return process


@pytest.fixture
def mintlog(tmp_path: Path) -> Iterator[MintlogProcess]:
    process = new_process(tmp_path / "data")
    try:
        process.start()
        yield process
    finally:
        process.cleanup()


@pytest.mark.timeout(240)  # a start, an alert, two steps with their delay, and a wait for a step that never comes
def test_steps_escalate_until_the_link_acknowledges_then_nothing_more_is_sent(mintlog: MintlogProcess) -> None:
    key = mintlog.bootstrap("acme")
    with WebhookReceiver() as first_team, WebhookReceiver() as second_team:
        first = channel(mintlog, key, "first line", first_team.url)
        second = channel(mintlog, key, "second line", second_team.url)
        policy = api(
            mintlog,
            key,
            "POST",
            "/v1/oncall/escalation-policies",
            {
                "name": "payments",
                "steps": [
                    {"targets": [{"type": "channel", "id": first}]},
                    {"delay_minutes": 0.1, "targets": [{"type": "channel", "id": second}]},
                    {"delay_minutes": 0.1, "targets": [{"type": "channel", "id": first}]},
                ],
            },
        )
        assert policy.status_code == 201, policy.text
        policy_id = policy.json()["id"]
        firing_rule(mintlog, key, policy_id)

        step_one = first_team.wait_for(1, timeout_seconds=60)[0]
        assert verify_standard_webhook(step_one, SECRET)
        body = json.loads(step_one.body)
        assert body["type"] == "incident.escalated"
        assert (body["data"]["step"], body["data"]["policy_id"]) == (1, policy_id)
        incident_id = body["data"]["incident_id"]

        step_two = second_team.wait_for(1, timeout_seconds=60)[0]
        assert step_two.arrived - step_one.arrived >= 5.0  # its 6 s delay, less the clocks' granularity
        links = json.loads(step_two.body)["data"]
        assert links["step"] == 2
        assert links["acknowledge_url"].startswith(f"{mintlog.api_url}/oncall/actions/")

        shown = httpx.get(links["acknowledge_url"], headers={"Accept": "text/html"}, timeout=30)
        assert shown.status_code == 200
        assert "<form" in shown.text
        assert api(mintlog, key, "GET", f"/v1/incidents/{incident_id}").json()["status"] == "triggered"
        acted = httpx.post(links["acknowledge_url"], timeout=30)
        assert acted.status_code == 200, acted.text
        assert (acted.json()["status"], acted.json()["actor"]) == ("acknowledged", f"channel:{second}")
        again = httpx.post(links["acknowledge_url"], timeout=30)
        assert (again.status_code, again.json()["code"]) == (410, "link_used")
        tampered = links["resolve_url"][:-3] + ("AAA" if not links["resolve_url"].endswith("AAA") else "BBB")
        assert httpx.post(tampered, timeout=30).status_code == 404

        time.sleep(15)  # step 3 was due 6 s after step 2: the acknowledgement stopped it
        assert len(escalated(first_team.received)) == 1
        assert len(escalated(second_team.received)) == 1

    detail = api(mintlog, key, "GET", f"/v1/incidents/{incident_id}").json()
    assert detail["acknowledged_by"] == f"channel:{second}"
    types = [entry["event_type"] for entry in detail["timeline"]]
    assert types.count("escalation_step") == 2
    assert types.count("notified") == 2
    assert "escalation_started" in types
    assert "acknowledged" in types

    stats = api(mintlog, key, "GET", "/v1/incidents/stats?group_by=policy")
    assert stats.status_code == 200, stats.text
    (group,) = stats.json()["groups"]
    assert (group["key"], group["count"], group["acknowledged"], group["resolved"]) == (policy_id, 1, 1, 0)
    assert group["mtta_p50_seconds"] >= 5.0
    assert group["mttr_p50_seconds"] is None
    bad = api(mintlog, key, "GET", "/v1/incidents/stats?group_by=team")
    assert (bad.status_code, bad.json()["field"]) == (422, "group_by")


def test_bad_policies_are_refused_naming_the_field(mintlog: MintlogProcess) -> None:
    key = mintlog.bootstrap("acme")
    other_key = mintlog.bootstrap("globex")
    foreign = channel(mintlog, other_key, "theirs", "https://example.com/hook")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "p", "steps": []}, "steps"),
        ({"name": "p", "steps": [{"targets": []}]}, "steps[0].targets"),
        ({"name": "p", "steps": [{"targets": [{"type": "channel", "id": foreign}]}]}, "steps[0].targets[0]"),
        ({"name": "p", "steps": [{"targets": [{"type": "team", "id": "x"}]}]}, "steps[0].targets[0].type"),
        ({"name": "p", "steps": [{"targets": [{"type": "person", "id": "per_1"}]}]}, "steps[0].targets[0]"),
        ({"name": "p", "steps": [{"targets": [{"type": "schedule", "id": "sch_nope"}]}]}, "steps[0].targets[0]"),
        ({"name": "p", "steps": [{"delay_minutes": -1, "targets": []}]}, "steps[0].delay_minutes"),
    ]
    for body, field in cases:
        refused = api(mintlog, key, "POST", "/v1/oncall/escalation-policies", body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["field"] == field, (body, refused.json())
    mine = channel(mintlog, key, "mine", "https://example.com/hook")
    policy = api(
        mintlog,
        key,
        "POST",
        "/v1/oncall/escalation-policies",
        {"name": "p", "steps": [{"targets": [{"type": "channel", "id": mine}]}]},
    ).json()
    assert api(mintlog, other_key, "GET", f"/v1/oncall/escalation-policies/{policy['id']}").status_code == 404
    unknown = api(mintlog, key, "PUT", "/v1/oncall/escalation-policies/default", {"policy_id": "esp_nope"})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "policy_id")
    made_default = api(mintlog, key, "PUT", "/v1/oncall/escalation-policies/default", {"policy_id": policy["id"]})
    assert made_default.status_code == 200, made_default.text
    assert api(mintlog, key, "GET", "/v1/oncall/escalation-policies/default").json()["id"] == policy["id"]
    incident = api(mintlog, key, "POST", "/v1/incidents", {"title": "t", "escalation_policy_id": "esp_nope"})
    assert (incident.status_code, incident.json()["field"]) == (422, "escalation_policy_id")
    audit = api(mintlog, key, "GET", "/v1/audit").json()["items"]
    assert {"escalation_policy.create", "escalation_policy.default"} <= {entry["action"] for entry in audit}


@pytest.mark.timeout(300)  # two all-in-one starts, an alert and two steps
def test_a_kill_9_between_two_steps_neither_skips_nor_repeats_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with WebhookReceiver() as receiver:
        process = new_process(data_dir)
        try:
            process.start()
            key = process.bootstrap("acme")
            target = channel(process, key, "team", receiver.url)
            steps = [
                {"targets": [{"type": "channel", "id": target}]},
                {"delay_minutes": 0.25, "targets": [{"type": "channel", "id": target}]},
            ]
            policy = api(process, key, "POST", "/v1/oncall/escalation-policies", {"name": "p", "steps": steps})
            assert policy.status_code == 201, policy.text
            firing_rule(process, key, policy.json()["id"])
            receiver.wait_for(1, timeout_seconds=60)
            process.kill9()
        finally:
            process.cleanup()
        restarted = new_process(data_dir)
        try:
            restarted.start()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and len(escalated(receiver.received)) < 2:
                time.sleep(0.2)
            time.sleep(5)  # anything repeated would arrive by now
            steps_received = [body["data"]["step"] for body in escalated(receiver.received)]
            assert sorted(steps_received) == [1, 2], restarted.logs()
        finally:
            restarted.cleanup()
