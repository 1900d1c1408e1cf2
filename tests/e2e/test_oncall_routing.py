"""Routing incidents to escalation policies by severity and labels, through a real `mintlog run`: the routes are
replaced whole and checked (422 naming the field), kept per tenant, audited; a hand-made incident escalates by
the policy it names, else by the first route that matches it, else by the tenant's default, and its timeline
says which."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e


def api(mintlog: MintlogProcess, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{mintlog.api_url}{path}", json=body, headers={"X-API-Key": key}, timeout=30)


@pytest.fixture(scope="module")
def mintlog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MintlogProcess]:
    process = MintlogProcess(data_dir=Path(tmp_path_factory.mktemp("routing")) / "data")
    try:
        process.start()
        yield process
    finally:
        process.cleanup()


def policy(mintlog: MintlogProcess, key: str, name: str) -> str:
    channel = api(
        mintlog,
        key,
        "POST",
        "/v1/notifications/channels",
        {"name": name, "channel_type": "webhook", "config": {"url": "https://example.com/hook"}},
    )
    assert channel.status_code == 201, channel.text
    created = api(
        mintlog,
        key,
        "POST",
        "/v1/oncall/escalation-policies",
        {"name": name, "steps": [{"targets": [{"type": "channel", "id": channel.json()["id"]}]}]},
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def escalation_started(mintlog: MintlogProcess, key: str, incident_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        timeline = api(mintlog, key, "GET", f"/v1/incidents/{incident_id}").json()["timeline"]
        started = [entry for entry in timeline if entry["event_type"] == "escalation_started"]
        if started:
            return started[0]
        assert time.monotonic() < deadline, timeline
        time.sleep(0.2)


def test_routes_are_checked_whole_naming_the_field_kept_per_tenant_and_audited(mintlog: MintlogProcess) -> None:
    key = mintlog.bootstrap("route-checks")
    other_key = mintlog.bootstrap("route-checks-other")
    mine = policy(mintlog, key, "mine")
    theirs = policy(mintlog, other_key, "theirs")
    assert api(mintlog, key, "GET", "/v1/oncall/routes").json() == {"routes": [], "updated_at": None}
    cases: list[tuple[Any, str]] = [
        ({"routes": [{"policy_id": mine}]}, "routes[0]"),
        (
            {"routes": [{"policy_id": mine, "severities": ["info"]}, {"policy_id": theirs, "labels": {"a": "b"}}]},
            "routes[1].policy_id",
        ),
        ({"routes": [{"policy_id": "esp_nope", "severities": ["info"]}]}, "routes[0].policy_id"),
        ({"routes": [{"policy_id": mine, "label_patterns": {"service": "pay("}}]}, "routes[0].label_patterns.service"),
        ({"routes": [{"policy_id": mine, "label_patterns": {"host": "(a|aa)+b"}}]}, "routes[0].label_patterns.host"),
        ({"routes": [{"policy_id": mine, "severities": ["urgent"]}]}, "routes[0].severities[0]"),
        ({"routes": [{"policy_id": mine, "severities": []}]}, "routes[0].severities"),
        ({"routes": [{"policy_id": mine, "labels": {"a": "b"}, "priority": 1}]}, "routes[0].priority"),
        ({"routes": [{"policy_id": mine, "labels": {"a": 1}}]}, "routes[0].labels[...]"),
        ({}, "routes"),
    ]
    for body, field in cases:
        refused = api(mintlog, key, "PUT", "/v1/oncall/routes", body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["field"] == field, (body, refused.json())
    routes = [{"policy_id": mine, "name": "db", "labels": {"team": "db"}}]
    replaced = api(mintlog, key, "PUT", "/v1/oncall/routes", {"routes": routes})
    assert replaced.status_code == 200, replaced.text
    stored = api(mintlog, key, "GET", "/v1/oncall/routes").json()
    assert stored["updated_at"] is not None
    assert stored["routes"] == [
        {"policy_id": mine, "name": "db", "severities": None, "labels": {"team": "db"}, "label_patterns": {}}
    ]
    assert api(mintlog, other_key, "GET", "/v1/oncall/routes").json()["routes"] == []
    reader = api(mintlog, key, "POST", "/v1/keys", {"name": "reader", "scopes": ["oncall:read"]}).json()["key"]
    forbidden = api(mintlog, reader, "PUT", "/v1/oncall/routes", {"routes": []})
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "missing_scope")
    assert api(mintlog, reader, "GET", "/v1/oncall/routes").json()["routes"] == stored["routes"]
    audit = [
        entry
        for entry in api(mintlog, key, "GET", "/v1/audit").json()["items"]
        if entry["action"] == "oncall_routes.replace"
    ]
    assert {entry["result"] for entry in audit} >= {"ok", "error", "denied"}
    assert api(mintlog, key, "PUT", "/v1/oncall/routes", {"routes": []}).json()["routes"] == []


def test_an_incident_escalates_by_its_own_policy_else_the_first_matching_route_else_the_default(
    mintlog: MintlogProcess,
) -> None:
    key = mintlog.bootstrap("route-flow")
    default, database, critical, named = (policy(mintlog, key, name) for name in ("default", "db", "crit", "named"))
    assert api(mintlog, key, "PUT", "/v1/oncall/escalation-policies/default", {"policy_id": default}).is_success
    routes = [
        {"policy_id": database, "name": "database", "labels": {"team": "db"}},
        {"policy_id": critical, "severities": ["critical"], "label_patterns": {"service": "pay.*"}},
    ]
    assert api(mintlog, key, "PUT", "/v1/oncall/routes", {"routes": routes}).status_code == 200

    def opened(body: dict[str, Any]) -> dict[str, Any]:
        created = api(mintlog, key, "POST", "/v1/incidents", {"title": "t"} | body)
        assert created.status_code == 201, created.text
        assert created.json()["labels"] == body.get("labels", {})
        return escalation_started(mintlog, key, created.json()["id"])

    by_team = opened({"severity": "critical", "labels": {"team": "db", "service": "payments"}})
    assert (by_team["data"]["policy_id"], by_team["data"]["chosen_by"], by_team["data"]["route"]) == (
        database,
        "route",
        0,
    )
    assert "route 1 'database' matched" in by_team["content"]
    by_severity = opened({"severity": "critical", "labels": {"service": "payments-api"}})
    assert (by_severity["data"]["policy_id"], by_severity["data"]["route"]) == (critical, 1)
    unmatched = opened({"severity": "warning", "labels": {"service": "payments-api"}})
    assert (unmatched["data"]["policy_id"], unmatched["data"]["chosen_by"]) == (default, "default")
    own = opened({"severity": "critical", "labels": {"team": "db"}, "escalation_policy_id": named})
    assert (own["data"]["policy_id"], own["data"]["chosen_by"]) == (named, "incident")

    # A route whose policy is deleted is skipped: the next route that matches, else the default, escalates.
    assert api(mintlog, key, "DELETE", f"/v1/oncall/escalation-policies/{database}").status_code == 204
    after_delete = opened({"severity": "critical", "labels": {"team": "db", "service": "pay"}})
    assert (after_delete["data"]["policy_id"], after_delete["data"]["route"]) == (critical, 1)
