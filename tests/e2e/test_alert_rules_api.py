"""Alert rules through the API (in process, SQLite), and the alert role evaluating them over the same Runtime
(Tantivy store, memory bus): CRUD, 422s naming members, 404 across tenants, scopes, and six errors → one
firing event on `alerts.events.{tenant}`, then its resolution."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import msgspec
import pytest

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.events import LogEvent
from mintlog.domain.streams import decode_alert_event
from mintlog.roles.alert.role import AlertRole
from mintlog.roles.api.role import build_api_app
from mintlog.settings import AlertSettings
from tests.e2e.inprocess import ApiClient, api_client

pytestmark = pytest.mark.e2e

SEED_RULE = {"name": "high-errors", "query": {"level": "error"}, "threshold": 5, "window_seconds": 300}
_NUMBERS = itertools.count()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data") as client:
        yield client


@pytest.fixture
async def keys(api: ApiClient) -> dict[str, str]:
    """Keys of tenants `alpha` (all tenant scopes), `beta` (all), and `alpha` read-only and ingest-only."""
    for tenant in ("alpha", "beta"):
        await api.create_tenant(tenant)
    return {
        "alpha": (await api.create_key("alpha"))["key"],
        "beta": (await api.create_key("beta"))["key"],
        "reader": (await api.create_key("alpha", scopes=["alerts:read"]))["key"],
        "ingest": (await api.create_key("alpha", scopes=["ingest:logs"]))["key"],
    }


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


async def test_the_seed_rule_is_created_listed_read_updated_and_deleted(api: ApiClient, keys: dict[str, str]) -> None:
    key = keys["alpha"]
    created = await api.call("POST", "/v1/alerts/rules", key, SEED_RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["id"].startswith("rule_")
    assert rule["tenant_id"] == "alpha"
    assert rule["query"] == {"level": "error"}
    assert (rule["comparator"], rule["interval_seconds"], rule["severity"], rule["is_active"]) == (
        "gt",
        60,
        "warning",
        True,
    )
    listed = (await api.call("GET", "/v1/alerts/rules", key)).json()
    assert [item["id"] for item in listed["items"]] == [rule["id"]]
    assert listed["next_cursor"] is None

    # The seed's PUT sends some members: they change, the others stay.
    updated = await api.call(
        "PUT", f"/v1/alerts/rules/{rule['id']}", key, {"name": "high-errors", "threshold": 10, "is_active": True}
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["threshold"], updated.json()["window_seconds"]) == (10, 300)
    patched = await api.call("PATCH", f"/v1/alerts/rules/{rule['id']}", key, {"severity": "critical"})
    assert (patched.json()["severity"], patched.json()["threshold"]) == ("critical", 10)

    detail = (await api.call("GET", f"/v1/alerts/rules/{rule['id']}", key)).json()
    assert (detail["name"], detail["threshold"], detail["severity"], detail["states"]) == (
        "high-errors",
        10,
        "critical",
        [],
    )
    assert (await api.call("DELETE", f"/v1/alerts/rules/{rule['id']}", key)).status_code == 204
    problem(await api.call("GET", f"/v1/alerts/rules/{rule['id']}", key), 404, "rule_not_found")
    problem(await api.call("DELETE", f"/v1/alerts/rules/{rule['id']}", key), 404, "rule_not_found")
    audit = (await api.call("GET", "/v1/admin/audit", api.admin_key, tenant_id="alpha")).json()["items"]
    assert {entry["action"] for entry in audit} >= {"alert_rule.create", "alert_rule.update", "alert_rule.delete"}


async def test_rules_are_listed_in_pages(api: ApiClient, keys: dict[str, str]) -> None:
    ids = [
        (await api.call("POST", "/v1/alerts/rules", keys["alpha"], {**SEED_RULE, "name": f"r{n}"})).json()["id"]
        for n in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await api.call("GET", "/v1/alerts/rules", keys["alpha"], **params)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SEED_RULE, "threshold": -1}, "threshold"),
        ({**SEED_RULE, "comparator": "between"}, "comparator"),
        ({**SEED_RULE, "interval_seconds": 1}, "interval_seconds"),
        ({**SEED_RULE, "group_by": "message"}, "group_by"),
        ({**SEED_RULE, "message": "{value} over {limit}"}, "message"),
        ({**SEED_RULE, "query": {"level": "error", "size": 5}}, "query.size"),
        ({**SEED_RULE, "channel_ids": ["c"] * 21}, "channel_ids"),
        ({**SEED_RULE, "id": "rule_mine"}, "id"),
        ({"name": "x", "query": {}, "window_seconds": 60}, "threshold"),
    ],
)
async def test_an_invalid_rule_is_a_422_naming_the_member(
    api: ApiClient, keys: dict[str, str], body: dict[str, Any], field: str
) -> None:
    assert (
        problem(await api.call("POST", "/v1/alerts/rules", keys["alpha"], body), 422, "validation_failed")["field"]
        == field
    )


async def make_channel(api: ApiClient, key: str) -> str:
    body = {"name": "team", "channel_type": "webhook", "config": {"url": "https://hooks.example.com/x"}}
    response = await api.call("POST", "/v1/notifications/channels", key, body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_rule_may_only_name_the_tenants_own_channels(api: ApiClient, keys: dict[str, str]) -> None:
    own = await make_channel(api, keys["alpha"])
    foreign = await make_channel(api, keys["beta"])
    for channel_ids, field in (([own, "ch_missing"], "channel_ids[1]"), ([foreign], "channel_ids[0]")):
        answer = await api.call("POST", "/v1/alerts/rules", keys["alpha"], {**SEED_RULE, "channel_ids": channel_ids})
        assert problem(answer, 422, "validation_failed")["field"] == field
    created = await api.call("POST", "/v1/alerts/rules", keys["alpha"], {**SEED_RULE, "channel_ids": [own]})
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    changed = await api.call("PUT", f"/v1/alerts/rules/{rule_id}", keys["alpha"], {"channel_ids": [foreign]})
    assert problem(changed, 422, "validation_failed")["field"] == "channel_ids[0]"


async def test_a_query_error_is_a_422_with_the_field_and_position(api: ApiClient, keys: dict[str, str]) -> None:
    body = {**SEED_RULE, "query": {"query": 'service:"checkout'}}
    refusal = problem(await api.call("POST", "/v1/alerts/rules", keys["alpha"], body), 422, "invalid_query")
    assert refusal["field"] == "query.query"
    assert isinstance(refusal["position"], int)


async def test_a_rule_query_gets_the_hints_search_gives(api: ApiClient, keys: dict[str, str]) -> None:
    key = keys["alpha"]
    # A level that can never match is refused, with the query meant, on create and on update alike.
    refusal = problem(
        await api.call("POST", "/v1/alerts/rules", key, {**SEED_RULE, "query": {"query": "level:eror"}}),
        422,
        "invalid_query",
    )
    assert (refusal["field"], refusal["position"], refusal["suggestion"]) == ("query.query", 6, "level:error")
    level = problem(
        await api.call("POST", "/v1/alerts/rules", key, {**SEED_RULE, "query": {"level": "warning"}}),
        422,
        "validation_failed",
    )
    assert (level["field"], level["suggestion"]) == ("query.level", "warn")

    # A valid query that is likely wrong is stored, and the rule says why it may never fire.
    created = await api.call("POST", "/v1/alerts/rules", key, {**SEED_RULE, "query": {"query": "timeout or reset"}})
    assert created.status_code == 201, created.text
    rule = created.json()
    assert [(warning["code"], warning["suggestion"]) for warning in rule["warnings"]] == [
        ("lowercase_operator", "timeout OR reset")
    ]
    path = f"/v1/alerts/rules/{rule['id']}"
    assert (await api.call("GET", path, key)).json()["warnings"] == rule["warnings"]
    updated = await api.call("PATCH", path, key, {"query": {"query": "timeout OR reset"}})
    assert updated.status_code == 200, updated.text
    assert "warnings" not in updated.json()
    refused = problem(
        await api.call("PATCH", path, key, {"query": {"query": "level:(error OR eror)"}}), 422, "invalid_query"
    )
    assert refused["suggestion"] == "level:(error OR error)"


async def test_an_update_is_checked_like_a_create(api: ApiClient, keys: dict[str, str]) -> None:
    rule = (await api.call("POST", "/v1/alerts/rules", keys["alpha"], SEED_RULE)).json()
    path = f"/v1/alerts/rules/{rule['id']}"
    assert (
        problem(await api.call("PUT", path, keys["alpha"], {"window_seconds": 1}), 422, "validation_failed")["field"]
        == "window_seconds"
    )
    assert (
        problem(await api.call("PUT", path, keys["alpha"], {"created_at": "x"}), 422, "validation_failed")["field"]
        == "created_at"
    )
    assert (await api.call("GET", path, keys["alpha"])).json()["window_seconds"] == 300


async def test_another_tenants_rule_is_404_on_every_verb(api: ApiClient, keys: dict[str, str]) -> None:
    rule = (await api.call("POST", "/v1/alerts/rules", keys["alpha"], SEED_RULE)).json()
    path = f"/v1/alerts/rules/{rule['id']}"
    for method, body in (("GET", None), ("PUT", {"threshold": 1}), ("PATCH", {"threshold": 1}), ("DELETE", None)):
        problem(await api.call(method, path, keys["beta"], body), 404, "rule_not_found")
    assert (await api.call("GET", "/v1/alerts/rules", keys["beta"])).json()["items"] == []
    assert (await api.call("GET", path, keys["alpha"])).json()["threshold"] == 5


async def test_reading_needs_alerts_read_and_writing_alerts_write(api: ApiClient, keys: dict[str, str]) -> None:
    rule = (await api.call("POST", "/v1/alerts/rules", keys["alpha"], SEED_RULE)).json()
    path = f"/v1/alerts/rules/{rule['id']}"
    assert (await api.call("GET", path, keys["reader"])).status_code == 200
    assert (await api.call("GET", "/v1/alerts/rules", keys["reader"])).status_code == 200
    for method, target, body in (
        ("POST", "/v1/alerts/rules", SEED_RULE),
        ("PUT", path, {"threshold": 1}),
        ("DELETE", path, None),
    ):
        refusal = problem(await api.call(method, target, keys["reader"], body), 403, "missing_scope")
        assert refusal["required_scope"] == "alerts:write"
    refusal = problem(await api.call("GET", path, keys["ingest"]), 403, "missing_scope")
    assert refusal["required_scope"] == "alerts:read"
    problem(await api.call("GET", "/v1/alerts/rules", None), 401, "unauthorized")


async def test_a_tenant_past_its_rule_limit_gets_a_409(api: ApiClient, keys: dict[str, str]) -> None:
    runtime = api.runtime
    runtime.settings = msgspec.structs.replace(runtime.settings, alert=AlertSettings(max_rules_per_tenant=2))
    transport = httpx.ASGITransport(app=cast("Any", build_api_app(runtime)))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        headers = {"X-API-Key": keys["alpha"]}
        for _ in range(2):
            assert (await http.post("/v1/alerts/rules", json=SEED_RULE, headers=headers)).status_code == 201
        problem(await http.post("/v1/alerts/rules", json=SEED_RULE, headers=headers), 409, "too_many_rules")
        beta = {"X-API-Key": keys["beta"]}
        assert (await http.post("/v1/alerts/rules", json=SEED_RULE, headers=beta)).status_code == 201


# The alert role over the same runtime


async def alert_events(api: ApiClient, count: int, timeout_seconds: float = 10) -> list[AlertEvent]:
    """The alert events on the bus once there are `count` (or when the time is up)."""
    consumer = await api.runtime.bus.consumer(
        "ALERTS_EVENTS", f"test-{next(_NUMBERS)}", filter_subject="alerts.events.>", ack_wait_seconds=60
    )
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    events: list[AlertEvent] = []
    try:
        while len(events) < count and asyncio.get_running_loop().time() < deadline:
            for message in await consumer.fetch(100, 0.2):
                events.append(decode_alert_event(message.data))
                await message.ack()
    finally:
        await consumer.close()
    return events


async def write_errors(api: ApiClient, tenant_id: str, count: int) -> None:
    at = datetime.now(UTC) - timedelta(seconds=3)
    await api.runtime.store.write(
        [
            LogEvent(
                id=f"{at.timestamp():.0f}-{next(_NUMBERS):06d}",
                tenant_id=tenant_id,
                timestamp=at,
                received_at=at,
                service="checkout",
                level="error",
                message="payment failed",
                host="web-1",
            )
            for _ in range(count)
        ]
    )


async def test_six_errors_make_one_firing_event_and_raising_the_threshold_resolves_it(
    api: ApiClient, keys: dict[str, str]
) -> None:
    role = AlertRole(api.runtime)
    await role.start()
    try:
        await write_errors(api, "alpha", 6)
        await write_errors(api, "beta", 20)  # another tenant's errors count for its rules only
        channel_id = await make_channel(api, keys["alpha"])
        rule = (
            await api.call(
                "POST",
                "/v1/alerts/rules",
                keys["alpha"],
                {**SEED_RULE, "interval_seconds": 5, "channel_ids": [channel_id]},
            )
        ).json()
        [fired] = await alert_events(api, 1)
        assert (fired.state, fired.previous_state, fired.value, fired.rule_id, fired.tenant_id) == (
            "firing",
            "ok",
            6.0,
            rule["id"],
            "alpha",
        )
        assert fired.channel_ids == [channel_id]
        assert len(fired.sample_event_ids) == 3
        await asyncio.sleep(6)  # the next evaluation finds it still firing: nothing new
        assert len(await alert_events(api, 2, timeout_seconds=0.5)) == 1
        [state] = (await api.call("GET", f"/v1/alerts/rules/{rule['id']}", keys["alpha"])).json()["states"]
        assert (state["state"], state["value"], state["dedup_key"]) == ("firing", 6, fired.dedup_key)
        assert state["last_evaluated_at"] is not None

        raised = await api.call("PUT", f"/v1/alerts/rules/{rule['id']}", keys["alpha"], {"threshold": 100})
        assert raised.status_code == 200
        events = await alert_events(api, 2)
        assert [(event.previous_state, event.state) for event in events] == [("ok", "firing"), ("firing", "resolved")]
        assert events[1].dedup_key == fired.dedup_key
        assert events[1].id != fired.id
        [state] = (await api.call("GET", f"/v1/alerts/rules/{rule['id']}", keys["alpha"])).json()["states"]
        assert state["state"] == "resolved"
    finally:
        await role.stop()
