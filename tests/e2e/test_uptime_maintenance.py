"""Maintenance windows and badges through the API (in process, SQLite) with the uptime role and the incident
worker on the same Runtime (memory bus, a fake prober, a controlled clock): a failing monitor in a window shows
`maintenance` and opens no incident, after it goes down and opens one; the SLA counts the window as maintenance;
a window on a log-alert rule keeps its firing event from opening an incident; badges answer SVG with the token
alone and 404 once revoked; another tenant sees and uses none of it."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.streams import decode_alert_event, decode_raw_batch
from mintlog.domain.uptime_checks import CheckOutcome, CheckSpec
from mintlog.roles.notify.incident_worker import IncidentWorker
from mintlog.roles.uptime.role import UptimeRole
from tests.e2e.inprocess import ApiClient, api_client

pytestmark = pytest.mark.e2e

MONITOR = {
    "name": "shop <main> & co",
    "check": {"type": "http", "url": "http://93.184.216.34/health"},
    "interval_seconds": 60,
    "timeout_seconds": 5,
    "down_after": 1,
}
_NUMBERS = itertools.count()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data") as client:
        yield client


@pytest.fixture
async def keys(api: ApiClient) -> dict[str, str]:
    for tenant in ("alpha", "beta"):
        await api.create_tenant(tenant)
    return {
        "alpha": (await api.create_key("alpha"))["key"],
        "beta": (await api.create_key("beta"))["key"],
        "uptime_only": (await api.create_key("alpha", scopes=["uptime:read", "uptime:write"]))["key"],
    }


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


class FailingProber:
    async def run(self, spec: CheckSpec, *, timeout_seconds: float) -> CheckOutcome:
        return CheckOutcome(ok=False, latency_ms=8.0, status_code=503, error="status 503 not in 200-299")


class SteppedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def _drain(api: ApiClient, stream: str, subject: str) -> list[bytes]:
    consumer = await api.runtime.bus.consumer(
        stream, f"test-{next(_NUMBERS)}", filter_subject=subject, ack_wait_seconds=60
    )
    found: list[bytes] = []
    try:
        while batch := await consumer.fetch(100, 0.2):
            for message in batch:
                found.append(message.data)
                await message.ack()
    finally:
        await consumer.close()
    return found


def window_body(start: datetime, end: datetime, **targets: Any) -> dict[str, Any]:
    return {"name": "db upgrade", "starts_at": start.isoformat(), "ends_at": end.isoformat(), "targets": targets}


async def test_a_failing_monitor_in_a_window_shows_maintenance_then_goes_down_after_it(
    api: ApiClient, keys: dict[str, str]
) -> None:
    key = keys["alpha"]
    monitor = (await api.call("POST", "/v1/uptime/monitors", key, MONITOR)).json()
    start = datetime.now(UTC) + timedelta(seconds=1)
    created = await api.call(
        "POST",
        "/v1/uptime/maintenance-windows",
        key,
        window_body(start - timedelta(minutes=1), start + timedelta(minutes=3), monitor_ids=[monitor["id"]]),
    )
    assert created.status_code == 201, created.text
    window = created.json()
    assert (window["duration_seconds"], window["targets"]["monitor_ids"]) == (240, [monitor["id"]])

    clock = SteppedClock(start)
    role = UptimeRole(api.runtime, prober=FailingProber(), clock=clock)
    worker = IncidentWorker(api.runtime, clock=clock)
    states: list[str] = []
    for _ in range(5):  # three checks inside the window, two after it
        assert len(await role.scheduler.run_once()) == 1
        states.append((await api.call("GET", f"/v1/uptime/monitors/{monitor['id']}", key)).json()["status"]["state"])
        clock.now += timedelta(seconds=60)
    assert states == ["maintenance", "maintenance", "maintenance", "down", "down"]

    alerts: list[AlertEvent] = [
        decode_alert_event(data) for data in await _drain(api, "ALERTS_EVENTS", "alerts.events.alpha")
    ]
    assert [(event.state, event.evaluated_at) for event in alerts] == [("firing", start + timedelta(minutes=3))]
    applied = await worker.apply(alerts[0])  # after the window: the incident opens
    assert applied is not None
    assert applied.incident.status == "triggered"

    batches = [decode_raw_batch(data) for data in await _drain(api, "LOGS_RAW", "logs.raw.alpha")]
    results = [e["fields"] for b in batches for e in b.events if e["fields"]["event_kind"] == "check_result"]
    assert [fields.get("in_maintenance", False) for fields in results] == [True, True, True, False, False]
    changes = [e["fields"]["state"] for b in batches for e in b.events if e["fields"]["event_kind"] == "state_change"]
    assert changes == ["maintenance", "down"]

    stored = await api.call(
        "GET", f"/v1/uptime/monitors/{monitor['id']}/results", key, **{"from": "now-1h", "to": "now+1h"}
    )
    assert [item["in_maintenance"] for item in stored.json()["items"]] == [False, False, True, True, True]

    sla = (
        await api.call(
            "GET",
            f"/v1/uptime/monitors/{monitor['id']}/sla",
            key,
            **{"from": start.isoformat(), "to": clock.now.isoformat()},
        )
    ).json()
    # In maintenance from the first check to the fourth (3 minutes), then down for 2: only those are downtime.
    assert sla["maintenance_seconds"] == pytest.approx(180, abs=1)
    assert sla["downtime_seconds"] == pytest.approx(120, abs=1)
    assert (sla["checks"], sla["failed_checks"], sla["uptime_percent"]) == (2, 2, 0.0)


async def test_a_window_on_a_log_alert_rule_keeps_its_firing_event_from_opening_an_incident(
    api: ApiClient, keys: dict[str, str]
) -> None:
    key = keys["alpha"]
    rule = (
        await api.call(
            "POST",
            "/v1/alerts/rules",
            key,
            {"name": "errors", "query": {"level": "error"}, "threshold": 5, "window_seconds": 300},
        )
    ).json()
    now = datetime.now(UTC)
    body = window_body(now - timedelta(minutes=1), now + timedelta(minutes=10), alert_rule_ids=[rule["id"]])
    refused = problem(
        await api.call("POST", "/v1/uptime/maintenance-windows", keys["uptime_only"], body), 403, "missing_scope"
    )
    assert refused["required_scope"] == "alerts:write"
    assert (await api.call("POST", "/v1/uptime/maintenance-windows", key, body)).status_code == 201

    def firing(at: datetime, number: int) -> AlertEvent:
        return AlertEvent(
            id=f"alert:{rule['id']}::{number}",
            tenant_id="alpha",
            rule_id=rule["id"],
            rule_name="errors",
            dedup_key=f"{rule['id']}:",
            group={},
            previous_state="ok",
            state="firing",
            value=6.0,
            threshold=5.0,
            comparator="gt",
            window_start=at - timedelta(minutes=5),
            window_end=at,
            evaluated_at=at,
            severity="high",
            labels={},
            message="6 errors",
            channel_ids=[],
            auto_resolve_incident=True,
        )

    worker = IncidentWorker(api.runtime)
    assert await worker.apply(firing(now, 1)) is None
    assert (await api.call("GET", "/v1/incidents", key)).json()["items"] == []
    after = await worker.apply(firing(now + timedelta(minutes=11), 2))
    assert after is not None
    assert len((await api.call("GET", "/v1/incidents", key)).json()["items"]) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "rrule"),
        ({"rrule": "every sunday"}, "rrule"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"ends_at": "2026-06-01T10:00:00Z"}, "ends_at"),
        ({"targets": {}}, "targets"),
        ({"targets": {"monitor_ids": ["mon_nope"]}}, "targets.monitor_ids[0]"),
        ({"targets": {"alert_rule_ids": ["rule_nope"]}}, "targets.alert_rule_ids[0]"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_window_is_a_422_naming_the_field(
    api: ApiClient, keys: dict[str, str], changes: dict[str, Any], field: str
) -> None:
    body = {
        "name": "w",
        "starts_at": "2026-06-01T11:00:00Z",
        "ends_at": "2026-06-01T12:00:00Z",
        "targets": {"labels": {"team": "db"}},
        **changes,
    }
    refused = problem(
        await api.call("POST", "/v1/uptime/maintenance-windows", keys["alpha"], body), 422, "validation_failed"
    )
    assert refused["field"] == field
    assert (await api.call("GET", "/v1/uptime/maintenance-windows", keys["alpha"])).json()["items"] == []


async def test_windows_are_listed_replaced_deleted_audited_and_list_their_occurrences(
    api: ApiClient, keys: dict[str, str]
) -> None:
    key = keys["alpha"]
    sunday = {
        "name": "sunday backups",
        "starts_at": "2026-03-01T02:30:00",
        "duration_seconds": 3600,
        "rrule": "FREQ=WEEKLY;BYDAY=SU",
        "time_zone": "Europe/Berlin",
        "targets": {"labels": {"team": "db"}},
    }
    window = (await api.call("POST", "/v1/uptime/maintenance-windows", key, sunday)).json()
    assert window["next_occurrence"] is not None
    occurrences = await api.call(
        "GET",
        f"/v1/uptime/maintenance-windows/{window['id']}/occurrences",
        key,
        **{"from": "2026-03-20T00:00:00Z", "to": "2026-04-06T00:00:00Z"},
    )
    assert occurrences.status_code == 200, occurrences.text
    assert [item["starts_at"] for item in occurrences.json()["items"]] == [
        "2026-03-22T01:30:00Z",
        "2026-03-29T01:00:00Z",  # 02:30 does not exist that night: the window starts at the jump
        "2026-04-05T00:30:00Z",
    ]
    problem(
        await api.call(
            "GET",
            f"/v1/uptime/maintenance-windows/{window['id']}/occurrences",
            key,
            **{"from": "2026-01-01T00:00:00Z", "to": "2027-06-01T00:00:00Z"},
        ),
        400,
        "invalid_time",
    )
    replaced = await api.call(
        "PUT", f"/v1/uptime/maintenance-windows/{window['id']}", key, {**sunday, "name": "sunday backups v2"}
    )
    assert replaced.json()["name"] == "sunday backups v2"
    second = (await api.call("POST", "/v1/uptime/maintenance-windows", key, {**sunday, "name": "two"})).json()
    first_page = (await api.call("GET", "/v1/uptime/maintenance-windows", key, limit="1")).json()
    assert [item["id"] for item in first_page["items"]] == [window["id"]]
    rest = (await api.call("GET", "/v1/uptime/maintenance-windows", key, cursor=first_page["next_cursor"])).json()
    assert [item["id"] for item in rest["items"]] == [second["id"]]
    assert (await api.call("DELETE", f"/v1/uptime/maintenance-windows/{window['id']}", key)).status_code == 204
    problem(
        await api.call("GET", f"/v1/uptime/maintenance-windows/{window['id']}", key),
        404,
        "maintenance_window_not_found",
    )
    audit = (await api.call("GET", "/v1/audit", key, limit="50")).json()["items"]
    actions = {entry["action"] for entry in audit if entry["target_type"] == "maintenance_window"}
    assert actions == {"maintenance_window.create", "maintenance_window.update", "maintenance_window.delete"}


async def test_another_tenant_can_neither_see_nor_change_nor_target_these(api: ApiClient, keys: dict[str, str]) -> None:
    monitor = (await api.call("POST", "/v1/uptime/monitors", keys["alpha"], MONITOR)).json()
    now = datetime.now(UTC)
    window = (
        await api.call(
            "POST",
            "/v1/uptime/maintenance-windows",
            keys["alpha"],
            window_body(now, now + timedelta(hours=1), monitor_ids=[monitor["id"]]),
        )
    ).json()
    beta = keys["beta"]
    for method, path in [
        ("GET", f"/v1/uptime/maintenance-windows/{window['id']}"),
        ("GET", f"/v1/uptime/maintenance-windows/{window['id']}/occurrences"),
        ("DELETE", f"/v1/uptime/maintenance-windows/{window['id']}"),
    ]:
        problem(await api.call(method, path, beta), 404, "maintenance_window_not_found")
    replaced = await api.call(
        "PUT",
        f"/v1/uptime/maintenance-windows/{window['id']}",
        beta,
        window_body(now, now + timedelta(hours=1), labels={"a": "b"}),
    )
    problem(replaced, 404, "maintenance_window_not_found")
    assert (await api.call("GET", "/v1/uptime/maintenance-windows", beta)).json()["items"] == []
    # Naming another tenant's monitor is refused like an unknown one.
    foreign = await api.call(
        "POST",
        "/v1/uptime/maintenance-windows",
        beta,
        window_body(now, now + timedelta(hours=1), monitor_ids=[monitor["id"]]),
    )
    assert problem(foreign, 422, "validation_failed")["field"] == "targets.monitor_ids[0]"
    problem(await api.call("POST", f"/v1/uptime/monitors/{monitor['id']}/badge", beta), 404, "monitor_not_found")
    problem(await api.call("DELETE", f"/v1/uptime/monitors/{monitor['id']}/badge", beta), 404, "monitor_not_found")


async def test_a_badge_answers_svg_with_its_token_alone_until_revoked(api: ApiClient, keys: dict[str, str]) -> None:
    key = keys["alpha"]
    monitor = (await api.call("POST", "/v1/uptime/monitors", key, MONITOR)).json()
    minted = await api.call("POST", f"/v1/uptime/monitors/{monitor['id']}/badge", key)
    assert minted.status_code == 201, minted.text
    path = minted.json()["path"]
    assert path == f"/v1/uptime/badges/{minted.json()['token']}.svg"

    badge = await api.call("GET", path, None)
    assert badge.status_code == 200, badge.text
    assert badge.headers["content-type"].startswith("image/svg+xml")
    assert badge.headers["cache-control"] == "max-age=60"
    texts = [element.text for element in ElementTree.fromstring(badge.text).iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["shop <main> & co", "pending"]
    assert "<main>" not in badge.text
    assert monitor["id"] not in badge.text
    assert "93.184.216.34" not in badge.text

    uptime = await api.call("GET", path, None, kind="uptime", window="7d")
    assert uptime.status_code == 200
    texts = [element.text for element in ElementTree.fromstring(uptime.text).iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["shop <main> & co 7d", "n/a"]
    problem(await api.call("GET", path, None, kind="colour"), 400, "invalid_parameter")
    problem(await api.call("GET", path, None, window="1y"), 400, "invalid_parameter")

    # Minting again replaces the token; revoking makes the URL a 404 like any unknown token.
    again = (await api.call("POST", f"/v1/uptime/monitors/{monitor['id']}/badge", key)).json()
    problem(await api.call("GET", path, None), 404, "badge_not_found")
    assert (await api.call("GET", again["path"], None)).status_code == 200
    assert (await api.call("DELETE", f"/v1/uptime/monitors/{monitor['id']}/badge", key)).status_code == 204
    problem(await api.call("GET", again["path"], None), 404, "badge_not_found")
    problem(await api.call("GET", "/v1/uptime/badges/mlb_0000.svg", None), 404, "badge_not_found")
    problem(await api.call("GET", again["path"].removesuffix(".svg"), None), 404, "badge_not_found")
    audit = (await api.call("GET", "/v1/audit", key, limit="50")).json()["items"]
    assert {"monitor.badge_create", "monitor.badge_revoke"} <= {entry["action"] for entry in audit}


async def test_a_window_is_patched_member_by_member_validated_whole_and_audited(
    api: ApiClient, keys: dict[str, str]
) -> None:
    key = keys["alpha"]
    body = {
        "name": "nightly",
        "starts_at": "2026-03-01T02:00:00Z",
        "duration_seconds": 3600,
        "rrule": "FREQ=DAILY",
        "targets": {"labels": {"team": "db"}},
        "comment": "vacuum",
    }
    window = (await api.call("POST", "/v1/uptime/maintenance-windows", key, body)).json()
    path = f"/v1/uptime/maintenance-windows/{window['id']}"
    renamed = await api.call("PATCH", path, key, {"name": "nightly vacuum", "comment": None})
    assert renamed.status_code == 200, renamed.text
    view = renamed.json()
    assert (view["name"], view["comment"], view["rrule"], view["duration_seconds"]) == (
        "nightly vacuum",
        None,
        "FREQ=DAILY",
        3600,
    )
    assert view["targets"] == {"monitor_ids": [], "labels": {"team": "db"}, "alert_rule_ids": []}
    # `ends_at` replaces the duration.
    shorter = (await api.call("PATCH", path, key, {"ends_at": "2026-03-01T02:30:00Z"})).json()
    assert shorter["duration_seconds"] == 1800
    for changes, field in [
        ({"ends_at": "2026-03-01T01:00:00Z"}, "ends_at"),
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"targets": {}}, "targets"),
        ({"targets": {"monitor_ids": ["mon_nope"]}}, "targets.monitor_ids[0]"),
        ({"name": ""}, "name"),
        ({"surprise": 1}, "surprise"),
    ]:
        refused = problem(await api.call("PATCH", path, key, changes), 422, "validation_failed")
        assert refused["field"] == field, (changes, refused)
    # Nothing refused was stored.
    assert (await api.call("GET", path, key)).json()["name"] == "nightly vacuum"
    problem(await api.call("PATCH", path, keys["beta"], {"name": "x"}), 404, "maintenance_window_not_found")
    audit = (await api.call("GET", "/v1/audit", key, limit="50")).json()["items"]
    updates = [entry for entry in audit if entry["action"] == "maintenance_window.update"]
    assert len(updates) >= 2 + 7
    assert {entry["target_id"] for entry in updates} == {window["id"]}
