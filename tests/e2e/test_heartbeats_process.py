"""Heartbeat monitors end to end in one `mintlog run` process: a job pings its URL on the ingest port (no API
key), the uptime role records the pings (start → success measures the run), a missed deadline takes the monitor
down and opens an incident, a success ping brings it up and resolves it, `/fail` is down at once, unknown and
rotated tokens are 404, and another tenant sees nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e


class Running:
    def __init__(self, process: MintlogProcess, key: str, other_key: str) -> None:
        self.process = process
        self.key = key
        self.other_key = other_key

    def api(self, method: str, path: str, body: Any = None, *, key: str | None = None, **params: str) -> httpx.Response:
        headers = {"X-API-Key": key or self.key}
        return httpx.request(
            method, f"{self.process.api_url}{path}", json=body, params=params, headers=headers, timeout=30
        )

    def ping(self, ping_url: str, suffix: str = "", *, method: str = "POST", body: bytes = b"") -> httpx.Response:
        url = f"{self.process.ingest_url}{ping_url}{suffix}"
        return httpx.request(method, url, content=body or None, timeout=30)

    def create(self, name: str, schedule: dict[str, Any], **members: Any) -> dict[str, Any]:
        body = {"name": name, "check": {"type": "heartbeat", "schedule": schedule}, **members}
        created = self.api("POST", "/v1/uptime/monitors", body)
        assert created.status_code == 201, created.text
        return created.json()

    def monitor(self, monitor_id: str) -> dict[str, Any]:
        return self.api("GET", f"/v1/uptime/monitors/{monitor_id}").json()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    process = MintlogProcess(
        data_dir=Path(tmp_path_factory.mktemp("heartbeats")) / "data",
        extra_env={"MINTLOG_UPTIME__MIN_INTERVAL_SECONDS": "1", "MINTLOG_UPTIME__POLL_SECONDS": "0.1"},
    )
    try:
        process.start()
        yield Running(process, process.bootstrap("acme"), process.bootstrap("globex"))
    finally:
        process.cleanup()


def wait_until(condition: Callable[[], Any], timeout_seconds: float = 30) -> Any:
    deadline = time.monotonic() + timeout_seconds
    value: Any = None
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return value


def test_a_start_then_a_success_ping_records_the_run_and_its_log_event(running: Running) -> None:
    monitor = running.create("backup", {"kind": "period", "period_seconds": 3600, "grace_seconds": 600})
    assert monitor["ping_url"].startswith("/ping/")
    assert len(monitor["ping_url"]) >= len("/ping/") + 22  # at least 128 bits of token
    assert monitor["status"]["state"] == "pending"

    assert running.ping(monitor["ping_url"], "/start").status_code == 200
    time.sleep(0.5)
    answer = running.ping(monitor["ping_url"], body=b"3 files backed up")
    assert answer.status_code == 200, answer.text
    assert answer.text == "OK\n"

    def finished() -> dict[str, Any] | None:
        current = running.monitor(monitor["id"])
        return current if current["status"]["state"] == "up" else None

    current = wait_until(finished)
    assert current, running.process.logs()
    assert current["heartbeat"]["last_duration_seconds"] >= 0.5
    assert current["heartbeat"]["last_ping_kind"] == "success"
    # The deadline moved on from the ping: one period and the grace later.
    assert current["next_check_at"] > current["heartbeat"]["last_ping_at"]

    found = running.process.wait_for_total(
        running.key, {"query": f"fields.event_kind:ping fields.monitor_id:{monitor['id']}", "from": "now-1h"}, 2
    )
    assert found["total"] == 2, found
    success = next(event for event in found["events"] if event["fields"]["ping_kind"] == "success")
    assert success["fields"]["body"] == "3 files backed up"
    assert success["fields"]["duration_seconds"] >= 0.5
    results = running.api("GET", f"/v1/uptime/monitors/{monitor['id']}/results").json()["items"]
    assert [result["ok"] for result in results] == [True]


def test_a_late_heartbeat_opens_an_incident_and_a_success_ping_resolves_it(running: Running) -> None:
    monitor = running.create(
        "nightly", {"kind": "period", "period_seconds": 2, "grace_seconds": 1}, down_after=1, severity="critical"
    )

    def state() -> str:
        return running.monitor(monitor["id"])["status"]["state"]

    assert wait_until(lambda: state() == "down"), running.process.logs()
    assert running.monitor(monitor["id"])["status"]["last_error"].startswith("late: no ping since")

    def incident() -> dict[str, Any] | None:
        items = running.api("GET", "/v1/incidents", status="triggered").json()["items"]
        return next((item for item in items if "nightly" in item["title"]), None)

    opened = wait_until(incident)
    assert opened, running.process.logs()
    assert opened["severity"] == "critical"

    assert running.ping(monitor["ping_url"]).status_code == 200
    assert wait_until(lambda: state() == "up"), running.process.logs()

    def resolved() -> bool:
        return running.api("GET", f"/v1/incidents/{opened['id']}").json()["status"] == "resolved"

    assert wait_until(resolved), running.process.logs()


def test_a_fail_ping_or_a_non_zero_exit_status_is_down_at_once(running: Running) -> None:
    monitor = running.create(
        "import",
        {"kind": "cron", "expression": "0 3 * * *", "time_zone": "Europe/Berlin", "grace_seconds": 3600},
        down_after=1,
    )
    assert running.ping(monitor["ping_url"], "/fail", body=b"disk full").status_code == 200

    def current_state() -> str:
        return running.monitor(monitor["id"])["status"]["state"]

    assert wait_until(lambda: current_state() == "down"), running.process.logs()
    assert running.ping(monitor["ping_url"], "/0", method="GET").status_code == 200
    assert wait_until(lambda: current_state() == "up"), running.process.logs()
    assert running.ping(monitor["ping_url"], "/3", method="HEAD").status_code == 200
    assert wait_until(lambda: current_state() == "down"), running.process.logs()
    current = running.monitor(monitor["id"])
    assert current["heartbeat"]["last_exit_status"] == 3
    assert "exit status 3" in current["status"]["last_error"]


def test_unknown_rotated_and_foreign_pings_and_monitors_are_refused(running: Running) -> None:
    monitor = running.create("cleanup", {"kind": "period", "period_seconds": 600, "grace_seconds": 60})
    for path in ("/ping/" + "A" * 32, "/ping/short", f"{monitor['ping_url']}/256", f"{monitor['ping_url']}/sleep"):
        refused = httpx.post(f"{running.process.ingest_url}{path}", timeout=30)
        assert refused.status_code == 404, (path, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    too_big = running.ping(monitor["ping_url"], body=b"x" * (10 * 1024 + 1))
    assert too_big.status_code == 413, too_big.text

    rotated = running.api("POST", f"/v1/uptime/monitors/{monitor['id']}/rotate-ping-token")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["ping_url"] != monitor["ping_url"]
    assert running.ping(monitor["ping_url"]).status_code == 404
    assert running.ping(rotated.json()["ping_url"]).status_code == 200

    for method, suffix in (("GET", ""), ("POST", "/rotate-ping-token"), ("POST", "/pause")):
        foreign = running.api(method, f"/v1/uptime/monitors/{monitor['id']}{suffix}", key=running.other_key)
        assert foreign.status_code == 404, foreign.text
        assert foreign.json()["code"] == "monitor_not_found"
    assert running.api("GET", "/v1/uptime/monitors", key=running.other_key).json()["items"] == []

    audited = running.api("GET", "/v1/audit", limit="100").text
    assert '"monitor.rotate_ping_token"' in audited
    for url in (monitor["ping_url"], rotated.json()["ping_url"]):
        assert url.removeprefix("/ping/") not in audited


def test_bad_schedules_are_refused_naming_the_field(running: Running) -> None:
    cases = [
        ({"kind": "hourly", "grace_seconds": 0}, "check.schedule.kind"),
        ({"kind": "cron", "expression": "0 25 * * *", "grace_seconds": 0}, "check.schedule.expression"),
        ({"kind": "cron", "expression": "0 3 * * *", "time_zone": "Mars/Olympus", "grace_seconds": 0}, None),
        ({"kind": "period", "period_seconds": 0, "grace_seconds": 0}, "check.schedule.period_seconds"),
        ({"kind": "period", "period_seconds": 60, "grace_seconds": -1}, "check.schedule.grace_seconds"),
    ]
    for schedule, field in cases:
        body = {"name": "bad", "check": {"type": "heartbeat", "schedule": schedule}}
        refused = running.api("POST", "/v1/uptime/monitors", body)
        assert refused.status_code == 422, (schedule, refused.text)
        assert refused.json()["field"] == (field or "check.schedule.time_zone"), refused.json()


def test_a_paused_heartbeat_answers_pings_and_changes_nothing(running: Running) -> None:
    monitor = running.create("paused", {"kind": "period", "period_seconds": 2, "grace_seconds": 1}, paused=True)
    assert running.ping(monitor["ping_url"], "/fail").status_code == 200
    time.sleep(4)  # past the deadline an unpaused heartbeat would have had
    current = running.monitor(monitor["id"])
    assert current["status"]["state"] == "paused"
    assert current["heartbeat"]["last_ping_at"] is None
