"""Incidents and silences through the API (in process, SQLite or PostgreSQL, memory bus): the lifecycle with its
timeline, actors and timings, 409 on invalid transitions, 404 across tenants, the events published, silences."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.streams import decode_incident_event
from tests.e2e.inprocess import ApiClient, api_client

pytestmark = pytest.mark.e2e

SCOPES = ["incidents:read", "incidents:write", "alerts:read", "alerts:write"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None: SQLite in the data directory, the embedded default."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_database_url")


@pytest.fixture
async def api(tmp_path: Path, database_url: str | None) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data", database_url) as client:
        yield client


async def tenant_key(api: ApiClient, name: str, scopes: list[str] = SCOPES) -> tuple[str, str]:
    """A new tenant and a key of it: (secret, display prefix)."""
    tenant = await api.create_tenant(name)
    key = await api.create_key(tenant["id"], scopes=scopes)
    return key["key"], key["prefix"]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


async def published(api: ApiClient, expected: int) -> list[IncidentEvent]:
    consumer = await api.runtime.bus.consumer(
        "INCIDENTS_EVENTS", "test-reader", filter_subject="incidents.events.>", ack_wait_seconds=30
    )
    events: list[IncidentEvent] = []
    try:
        while len(events) < expected:
            messages = await consumer.fetch(expected, 2.0)
            if not messages:
                break
            for message in messages:
                events.append(decode_incident_event(message.data))
                await message.ack()
    finally:
        await consumer.close()
    return events


async def test_an_incident_goes_through_its_lifecycle_with_a_timeline_of_actors(api: ApiClient) -> None:
    key, prefix = await tenant_key(api, "acme")
    created = await api.call(
        "POST", "/v1/incidents", key, {"title": "Database outage", "severity": "critical", "description": "db down"}
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert (incident["status"], incident["severity"], incident["created_by"]) == ("triggered", "critical", prefix)
    assert incident["acknowledged_at"] is None
    assert incident["time_to_acknowledge_seconds"] is None
    assert [(e["event_type"], e["actor"]) for e in incident["timeline"]] == [("triggered", prefix)]
    path = f"/v1/incidents/{incident['id']}"

    acked = await api.call("PATCH", path, key, {"status": "acknowledged"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == prefix
    assert acked.json()["time_to_acknowledge_seconds"] >= 0
    again = problem(await api.call("PATCH", path, key, {"status": "acknowledged"}), 409, "invalid_transition")
    assert "from acknowledged to acknowledged" in again["detail"]

    resolved = await api.call("PATCH", path, key, {"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved"
    assert body["resolved_by"] == prefix
    assert body["time_to_resolve_seconds"] >= body["time_to_acknowledge_seconds"] >= 0
    reopen = problem(await api.call("PATCH", path, key, {"status": "acknowledged"}), 409, "invalid_transition")
    assert "from resolved to acknowledged" in reopen["detail"]
    problem(await api.call("PATCH", path, key, {"status": "triggered"}), 409, "invalid_transition")

    comment = await api.call("POST", f"{path}/timeline", key, {"event_type": "comment", "content": "root cause: disk"})
    assert comment.status_code == 201, comment.text
    assert (comment.json()["actor"], comment.json()["notified"]) == (prefix, False)

    detail = (await api.call("GET", path, key)).json()
    assert [(e["event_type"], e["actor"]) for e in detail["timeline"]] == [
        ("triggered", prefix),
        ("acknowledged", prefix),
        ("resolved", prefix),
        ("comment", prefix),
    ]
    assert detail["timeline"][-1]["content"] == "root cause: disk"

    events = await published(api, 4)
    assert [(e.type, e.notify, e.actor) for e in events] == [
        ("incident.triggered", True, prefix),
        ("incident.acknowledged", True, prefix),
        ("incident.resolved", True, prefix),
        ("incident.commented", False, prefix),
    ]
    assert [e.id for e in events] == [entry["id"] for entry in detail["timeline"]]
    assert {e.incident_id for e in events} == {incident["id"]}


async def test_an_incident_opened_by_hand_notifies_the_channels_it_names(api: ApiClient) -> None:
    scopes = [*SCOPES, "notifications:write"]
    key, _ = await tenant_key(api, "acme", scopes)
    other_key, _ = await tenant_key(api, "other", scopes)
    channel_body = {"name": "team", "channel_type": "webhook", "config": {"url": "https://hooks.example.com/x"}}
    channel_id = (await api.call("POST", "/v1/notifications/channels", key, channel_body)).json()["id"]
    foreign_id = (await api.call("POST", "/v1/notifications/channels", other_key, channel_body)).json()["id"]
    for channel_ids, field in (([foreign_id], "channel_ids[0]"), ([channel_id, channel_id], "channel_ids[1]")):
        body = {"title": "Outage", "channel_ids": channel_ids}
        refusal = problem(await api.call("POST", "/v1/incidents", key, body), 422, "validation_failed")
        assert refusal["field"] == field

    created = await api.call("POST", "/v1/incidents", key, {"title": "Outage", "channel_ids": [channel_id]})
    assert created.status_code == 201, created.text
    assert created.json()["channel_ids"] == [channel_id]
    incident_id = created.json()["id"]
    resolved = await api.call("PATCH", f"/v1/incidents/{incident_id}", key, {"status": "resolved"})
    assert resolved.status_code == 200, resolved.text

    events = await published(api, 2)
    assert [(event.type, event.notify, event.channel_ids) for event in events] == [
        ("incident.triggered", True, [channel_id]),
        ("incident.resolved", True, [channel_id]),
    ]


async def test_a_triggered_incident_can_be_resolved_directly(api: ApiClient) -> None:
    key, _ = await tenant_key(api, "acme")
    incident = (await api.call("POST", "/v1/incidents", key, {"title": "Flaky", "severity": "info"})).json()
    resolved = await api.call("PATCH", f"/v1/incidents/{incident['id']}", key, {"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["acknowledged_at"] is None
    assert resolved.json()["time_to_resolve_seconds"] >= 0


async def test_of_two_racing_changes_one_wins_and_the_other_gets_409(api: ApiClient) -> None:
    key, _ = await tenant_key(api, "acme")
    incident = (await api.call("POST", "/v1/incidents", key, {"title": "race"})).json()
    path = f"/v1/incidents/{incident['id']}"
    answers = await asyncio.gather(
        *(api.call("PATCH", path, key, {"status": status}) for status in ["acknowledged", "resolved"] * 3)
    )
    assert all(answer.status_code in (200, 409) for answer in answers)
    # Exactly one resolve wins, and at most one acknowledge (only if it came first).
    timeline = (await api.call("GET", path, key)).json()["timeline"]
    changes = [entry["event_type"] for entry in timeline[1:]]
    assert changes in (["resolved"], ["acknowledged", "resolved"])
    assert len(changes) == [answer.status_code for answer in answers].count(200)


async def test_bad_bodies_are_422_naming_the_member(api: ApiClient) -> None:
    key, _ = await tenant_key(api, "acme")
    missing = problem(await api.call("POST", "/v1/incidents", key, {"severity": "critical"}), 422, "validation_failed")
    assert missing["field"] == "title"
    severity = await api.call("POST", "/v1/incidents", key, {"title": "x", "severity": "apocalyptic"})
    assert problem(severity, 422, "validation_failed")["field"] == "severity"
    incident = (await api.call("POST", "/v1/incidents", key, {"title": "x"})).json()
    path = f"/v1/incidents/{incident['id']}"
    status = problem(await api.call("PATCH", path, key, {"status": "closed"}), 422, "validation_failed")
    assert status["field"] == "status"
    event_type = await api.call("POST", f"{path}/timeline", key, {"event_type": "resolved", "content": "done"})
    assert problem(event_type, 422, "validation_failed")["field"] == "event_type"
    empty = await api.call("POST", f"{path}/timeline", key, {"event_type": "comment", "content": ""})
    assert problem(empty, 422, "validation_failed")["field"] == "content"


async def test_another_tenants_incident_is_404_on_every_verb(api: ApiClient) -> None:
    acme, _ = await tenant_key(api, "acme")
    globex, _ = await tenant_key(api, "globex")
    incident = (await api.call("POST", "/v1/incidents", acme, {"title": "acme only"})).json()
    path = f"/v1/incidents/{incident['id']}"
    problem(await api.call("GET", path, globex), 404, "incident_not_found")
    problem(await api.call("PATCH", path, globex, {"status": "acknowledged"}), 404, "incident_not_found")
    comment = await api.call("POST", f"{path}/timeline", globex, {"event_type": "comment", "content": "hi"})
    problem(comment, 404, "incident_not_found")
    assert (await api.call("GET", "/v1/incidents", globex)).json()["items"] == []
    assert (await api.call("GET", path, acme)).json()["status"] == "triggered"


async def test_scopes_guard_reads_and_writes(api: ApiClient) -> None:
    reader, _ = await tenant_key(api, "acme", ["incidents:read"])
    problem(await api.call("POST", "/v1/incidents", reader, {"title": "x"}), 403, "missing_scope")
    assert (await api.call("GET", "/v1/incidents", reader)).status_code == 200
    problem(
        await api.call("POST", "/v1/alerts/silences", reader, {"rule_id": "r", "duration_seconds": 60}),
        403,
        "missing_scope",
    )
    problem(await api.call("GET", "/v1/alerts/silences", reader), 403, "missing_scope")


async def test_lists_are_newest_first_filtered_by_status_and_paged(api: ApiClient) -> None:
    key, _ = await tenant_key(api, "acme")
    ids = [(await api.call("POST", "/v1/incidents", key, {"title": f"n{n}"})).json()["id"] for n in range(3)]
    await api.call("PATCH", f"/v1/incidents/{ids[1]}", key, {"status": "resolved"})
    listed = (await api.call("GET", "/v1/incidents", key)).json()
    assert [item["id"] for item in listed["items"]] == ids[::-1]
    assert listed["next_cursor"] is None
    triggered = (await api.call("GET", "/v1/incidents", key, status="triggered")).json()["items"]
    assert [item["id"] for item in triggered] == [ids[2], ids[0]]
    resolved = (await api.call("GET", "/v1/incidents", key, status="resolved")).json()["items"]
    assert [item["id"] for item in resolved] == [ids[1]]
    first = (await api.call("GET", "/v1/incidents", key, limit="2")).json()
    second = (await api.call("GET", "/v1/incidents", key, limit="2", cursor=first["next_cursor"])).json()
    assert [item["id"] for item in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    problem(await api.call("GET", "/v1/incidents", key, status="closed"), 400, "invalid_parameter")


async def test_changes_are_in_the_audit_log(api: ApiClient) -> None:
    key, prefix = await tenant_key(api, "acme")
    incident = (await api.call("POST", "/v1/incidents", key, {"title": "x"})).json()
    await api.call("PATCH", f"/v1/incidents/{incident['id']}", key, {"status": "resolved"})
    response = await api.call("GET", "/v1/admin/audit", api.admin_key, tenant_id="acme")
    actions = {(entry["action"], entry["actor_key_prefix"], entry["result"]) for entry in response.json()["items"]}
    assert {("incident.create", prefix, "ok"), ("incident.update", prefix, "ok")} <= actions


async def test_silences_are_created_listed_and_expired(api: ApiClient) -> None:
    key, prefix = await tenant_key(api, "acme")
    other, _ = await tenant_key(api, "globex")
    created = await api.call(
        "POST",
        "/v1/alerts/silences",
        key,
        {"rule_id": "rule_1", "labels": {"service": "checkout"}, "duration_seconds": 3600, "comment": "deploy"},
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert (silence["state"], silence["created_by"], silence["labels"]) == ("active", prefix, {"service": "checkout"})
    starts = datetime.fromisoformat(silence["starts_at"])
    assert datetime.fromisoformat(silence["ends_at"]) - starts == timedelta(hours=1)
    later_start = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    later_end = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    pending = await api.call(
        "POST",
        "/v1/alerts/silences",
        key,
        {"labels": {"env": "staging"}, "starts_at": later_start, "ends_at": later_end},
    )
    assert pending.status_code == 201, pending.text
    assert pending.json()["state"] == "pending"

    active = (await api.call("GET", "/v1/alerts/silences", key, state="active")).json()["items"]
    assert [item["id"] for item in active] == [silence["id"]]
    assert len((await api.call("GET", "/v1/alerts/silences", key)).json()["items"]) == 2
    assert (await api.call("GET", "/v1/alerts/silences", other)).json()["items"] == []
    problem(await api.call("GET", f"/v1/alerts/silences/{silence['id']}", other), 404, "silence_not_found")
    problem(await api.call("DELETE", f"/v1/alerts/silences/{silence['id']}", other), 404, "silence_not_found")

    expired = await api.call("DELETE", f"/v1/alerts/silences/{silence['id']}", key)
    assert expired.status_code == 200, expired.text
    assert expired.json()["state"] == "expired"
    again = await api.call("DELETE", f"/v1/alerts/silences/{silence['id']}", key)
    assert again.json()["ends_at"] == expired.json()["ends_at"]
    listed = (await api.call("GET", "/v1/alerts/silences", key, state="expired")).json()["items"]
    assert [item["id"] for item in listed] == [silence["id"]]
    assert (await api.call("GET", f"/v1/alerts/silences/{silence['id']}", key)).json()["state"] == "expired"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration_seconds": 60}, "labels"),
        ({"rule_id": "r"}, "ends_at"),
        ({"rule_id": "r", "duration_seconds": 60, "ends_at": "2099-01-01T00:00:00Z"}, "ends_at"),
        ({"rule_id": "r", "duration_seconds": 31 * 86400}, "duration_seconds"),
        ({"rule_id": "r", "ends_at": "2000-01-01T00:00:00Z"}, "ends_at"),
        ({"rule_id": "r", "duration_seconds": 60, "matchers": {}}, "matchers"),
    ],
)
async def test_bad_silences_are_422_naming_the_member(api: ApiClient, body: dict[str, Any], field: str) -> None:
    key, _ = await tenant_key(api, "acme")
    refused = problem(await api.call("POST", "/v1/alerts/silences", key, body), 422, "validation_failed")
    assert refused["field"] == field
