"""Uptime monitors through the API (in process, SQLite), and the uptime role checking them over the same Runtime
(memory bus, a fake prober, a controlled clock): CRUD, 422s naming members, 404 across tenants, pause/resume,
confirmation, results as log events, the alert events that open and resolve the incident, results and SLA."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.streams import decode_alert_event, decode_raw_batch
from mintlog.domain.uptime_checks import CheckOutcome, CheckSpec
from mintlog.roles.uptime.role import UptimeRole
from tests.e2e.inprocess import ApiClient, api_client

pytestmark = pytest.mark.e2e

MONITOR = {
    "name": "shop",
    "check": {"type": "http", "url": "http://93.184.216.34/health"},
    "interval_seconds": 30,
    "timeout_seconds": 5,
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
        "reader": (await api.create_key("alpha", scopes=["uptime:read"]))["key"],
    }


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


class FakeProber:
    """Answers every check with `ok` (and `error` when not ok)."""

    def __init__(self) -> None:
        self.ok = True
        self.runs = 0

    async def run(self, spec: CheckSpec, *, timeout_seconds: float) -> CheckOutcome:
        self.runs += 1
        if self.ok:
            return CheckOutcome(ok=True, latency_ms=12.0, status_code=200)
        return CheckOutcome(ok=False, latency_ms=8.0, status_code=503, error="status 503 not in 200-299")


class SteppedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def test_a_monitor_is_created_listed_read_updated_paused_and_deleted(
    api: ApiClient, keys: dict[str, str]
) -> None:
    key = keys["alpha"]
    created = await api.call("POST", "/v1/uptime/monitors", key, MONITOR)
    assert created.status_code == 201, created.text
    monitor = created.json()
    assert monitor["id"].startswith("mon_")
    assert (monitor["down_after"], monitor["up_after"], monitor["resolve_incident_on_up"]) == (2, 1, True)
    assert monitor["status"]["state"] == "pending"
    listed = (await api.call("GET", "/v1/uptime/monitors", keys["reader"])).json()
    assert [item["id"] for item in listed["items"]] == [monitor["id"]]

    path = f"/v1/uptime/monitors/{monitor['id']}"
    updated = await api.call("PATCH", path, key, {"down_after": 3})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["down_after"], updated.json()["name"]) == (3, "shop")

    paused = await api.call("POST", f"{path}/pause", key)
    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused"], paused.json()["status"]["state"]) == (True, "paused")
    resumed = await api.call("POST", f"{path}/resume", key)
    assert (resumed.json()["paused"], resumed.json()["status"]["state"]) == (False, "pending")

    problem(await api.call("GET", path, keys["beta"]), 404, "monitor_not_found")
    problem(await api.call("DELETE", path, keys["beta"]), 404, "monitor_not_found")
    assert (await api.call("POST", "/v1/uptime/monitors", keys["reader"], MONITOR)).status_code == 403
    assert (await api.call("DELETE", path, key)).status_code == 204
    problem(await api.call("GET", path, key), 404, "monitor_not_found")

    audited = (await api.call("GET", "/v1/audit", key, limit="50")).json()["items"]
    assert sorted(
        (entry["action"], entry["result"]) for entry in audited if entry["action"].startswith("monitor.")
    ) == [
        ("monitor.create", "denied"),  # the read-only key's
        ("monitor.create", "ok"),
        ("monitor.delete", "ok"),
        ("monitor.pause", "ok"),
        ("monitor.resume", "ok"),
        ("monitor.update", "ok"),
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"check": {"type": "http", "url": "ftp://example.com/"}}, "check.url"),
        ({"check": {"type": "tcp", "host": "93.184.216.34", "port": 70000}}, "check.port"),
        ({"check": {"type": "http", "url": "http://127.0.0.1:8080/"}}, "check"),
        ({"check": {"type": "http", "url": "http://169.254.169.254/latest/meta-data"}}, "check"),
        ({"check": {"type": "smtp", "host": "x"}}, "check.type"),
        ({"interval_seconds": 10}, "interval_seconds"),
        ({"interval_seconds": 86401}, "interval_seconds"),
        ({"timeout_seconds": 30}, "timeout_seconds"),
        ({"down_after": 0}, "down_after"),
        ({"down_after": 11}, "down_after"),
        ({"severity": "urgent"}, "severity"),
        ({"name": ""}, "name"),
        ({"surprise": 1}, "surprise"),
        ({"confirmation": {"failures": 4, "window": 3}}, "confirmation.failures"),
        ({"confirmation": {"failures": 2, "window": 51}}, "confirmation.window"),
        ({"confirmation": {"failures": 0, "window": 5}}, "confirmation.failures"),
        ({"confirmation": {"failures": 2}}, "confirmation.window"),
        ({"locations": ["eu", "us"], "quorum": 3}, "quorum"),
        ({"quorum": 1}, "quorum"),
        ({"locations": []}, "locations"),
        ({"locations": ["eu", "eu"]}, "locations[1]"),
        ({"locations": ["eu west"]}, "locations[0]"),
        ({"locations": ["eu"], "quorum": 0}, "quorum"),
    ],
)
async def test_a_bad_monitor_is_a_422_naming_the_field(
    api: ApiClient, keys: dict[str, str], change: dict[str, Any], field: str
) -> None:
    body = problem(
        await api.call("POST", "/v1/uptime/monitors", keys["alpha"], {**MONITOR, **change}), 422, "validation_failed"
    )
    assert body["field"] == field, body


async def test_the_limit_of_monitors_per_tenant_is_a_409(api: ApiClient, keys: dict[str, str]) -> None:
    limit = api.runtime.settings.uptime.max_monitors_per_tenant
    for number in range(limit):
        created = await api.call("POST", "/v1/uptime/monitors", keys["alpha"], {**MONITOR, "name": f"m{number}"})
        assert created.status_code == 201, created.text
    problem(await api.call("POST", "/v1/uptime/monitors", keys["alpha"], MONITOR), 409, "too_many_monitors")


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


async def test_confirmed_down_opens_and_up_resolves_with_results_logs_and_sla(
    api: ApiClient, keys: dict[str, str]
) -> None:
    key = keys["alpha"]
    monitor = (await api.call("POST", "/v1/uptime/monitors", key, {**MONITOR, "down_after": 2})).json()
    prober = FakeProber()
    clock = SteppedClock(datetime.now(UTC) + timedelta(seconds=1))
    role = UptimeRole(api.runtime, prober=prober, clock=clock)
    start = clock.now

    states: list[str] = []
    for ok in (True, False, False, False, True, True):
        prober.ok = ok
        claimed = await role.scheduler.run_once()
        assert [claim.key for claim in claimed] == [monitor["id"]]
        assert await role.scheduler.run_once() == []  # claimed once per interval
        got = (await api.call("GET", f"/v1/uptime/monitors/{monitor['id']}", key)).json()
        states.append(got["status"]["state"])
        clock.now += timedelta(seconds=30)
    # One failure is not an outage (down_after=2); one success is enough to be up (up_after=1).
    assert states == ["up", "up", "down", "down", "up", "up"]
    assert prober.runs == 6

    events: list[AlertEvent] = [
        decode_alert_event(data) for data in await _drain(api, "ALERTS_EVENTS", "alerts.events.alpha")
    ]
    assert [(event.state, event.rule_id) for event in events] == [
        ("firing", monitor["id"]),
        ("resolved", monitor["id"]),
    ]
    assert events[0].dedup_key == events[1].dedup_key
    assert events[0].error == "status 503 not in 200-299"
    assert events[1].auto_resolve_incident is True

    batches = [decode_raw_batch(data) for data in await _drain(api, "LOGS_RAW", "logs.raw.alpha")]
    logged = [event for batch in batches for event in batch.events]
    assert len([event for event in logged if event["fields"]["event_kind"] == "check_result"]) == 6
    changes = [event for event in logged if event["fields"]["event_kind"] == "state_change"]
    assert [(event["fields"]["state"], event["level"]) for event in changes] == [
        ("up", "info"),
        ("down", "error"),
        ("up", "info"),
    ]
    assert {event["service"] for event in logged} == {"uptime"}

    window = {"from": (start - timedelta(seconds=1)).isoformat(), "to": (clock.now).isoformat()}
    results = await api.call("GET", f"/v1/uptime/monitors/{monitor['id']}/results", key, **window, limit="4")
    assert results.status_code == 200, results.text
    page = results.json()
    assert [item["ok"] for item in page["items"]] == [True, True, False, False]  # newest first
    rest = await api.call(
        "GET", f"/v1/uptime/monitors/{monitor['id']}/results", key, **window, cursor=page["next_cursor"]
    )
    assert [item["ok"] for item in rest.json()["items"]] == [False, True]
    # Each result keeps its schedule: due one interval after the last (from the creation), started when claimed.
    every = [*reversed(rest.json()["items"]), *reversed(page["items"])]
    due = [datetime.fromisoformat(item["due_at"]) for item in every]
    started = [datetime.fromisoformat(item["started_at"]) for item in every]
    assert due[0] == datetime.fromisoformat(monitor["next_check_at"])
    assert [later - earlier for earlier, later in itertools.pairwise(due)] == [timedelta(seconds=30)] * 5
    assert started == [start + timedelta(seconds=30 * index) for index in range(6)]

    sla = await api.call("GET", f"/v1/uptime/monitors/{monitor['id']}/sla", key, **window)
    assert sla.status_code == 200, sla.text
    report = sla.json()
    assert report["downtime_seconds"] == pytest.approx(60, abs=1)  # down from the 3rd check to the 5th
    assert (report["outages"], report["checks"], report["failed_checks"]) == (1, 6, 3)
    assert 0 < report["uptime_percent"] < 100
    problem(
        await api.call("GET", f"/v1/uptime/monitors/{monitor['id']}/sla", key, **{"from": "now", "to": "now-1h"}),
        400,
        "invalid_time",
    )


async def test_a_paused_monitor_is_not_checked(api: ApiClient, keys: dict[str, str]) -> None:
    monitor = (await api.call("POST", "/v1/uptime/monitors", keys["alpha"], {**MONITOR, "paused": True})).json()
    assert monitor["status"]["state"] == "paused"
    prober = FakeProber()
    role = UptimeRole(api.runtime, prober=prober, clock=lambda: datetime.now(UTC) + timedelta(seconds=5))
    assert await role.scheduler.run_once() == []
    assert prober.runs == 0


async def test_time_paused_after_going_down_is_not_downtime(api: ApiClient, keys: dict[str, str]) -> None:
    key = keys["alpha"]
    monitor = (await api.call("POST", "/v1/uptime/monitors", key, {**MONITOR, "down_after": 1})).json()
    prober = FakeProber()
    prober.ok = False
    checked_at = datetime.now(UTC)  # due since the create; the pause comes after it
    role = UptimeRole(api.runtime, prober=prober, clock=lambda: checked_at)
    await role.scheduler.run_once()
    paused = await api.call("POST", f"/v1/uptime/monitors/{monitor['id']}/pause", key)
    assert paused.json()["status"]["state"] == "paused"
    window = {"from": (checked_at - timedelta(minutes=1)).isoformat(), "to": "now+1h"}
    report = (await api.call("GET", f"/v1/uptime/monitors/{monitor['id']}/sla", key, **window)).json()
    assert report["downtime_seconds"] < 5, report  # down from the check until the pause, not for the hour after
