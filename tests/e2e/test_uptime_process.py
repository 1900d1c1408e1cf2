"""Uptime monitoring end to end in one `mintlog run` process on embedded defaults: a monitor on a local HTTP
target that the test flips from 200 to 503 and back. The monitor goes down after `down_after` failures, one
incident opens, the check results are searchable as logs, the target back up resolves the incident, and the SLA
report counts the downtime."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e


class FlippableTarget:
    """A local HTTP server answering every GET with `status` (200 until the test changes it)."""

    def __init__(self) -> None:
        self.status = 200
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(target.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/health"

    def __enter__(self) -> FlippableTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def uptime(tmp_path: Path) -> Iterator[tuple[MintlogProcess, str, FlippableTarget]]:
    with FlippableTarget() as target:
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
            yield process, process.bootstrap("acme"), target
        finally:
            process.cleanup()


def api(mintlog: MintlogProcess, key: str, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
    return httpx.request(
        method, f"{mintlog.api_url}{path}", json=body, params=params, headers={"X-API-Key": key}, timeout=30
    )


def wait_until(condition: Callable[[], Any], timeout_seconds: float = 30) -> Any:
    deadline = time.monotonic() + timeout_seconds
    value: Any = None
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return value


def test_a_failing_target_opens_an_incident_and_recovering_resolves_it(
    uptime: tuple[MintlogProcess, str, FlippableTarget],
) -> None:
    mintlog, key, target = uptime
    created = api(
        mintlog,
        key,
        "POST",
        "/v1/uptime/monitors",
        {
            "name": "shop",
            "check": {"type": "http", "url": target.url},
            "interval_seconds": 1,
            "timeout_seconds": 0.5,
            "down_after": 2,
        },
    )
    assert created.status_code == 201, created.text
    monitor_path = f"/v1/uptime/monitors/{created.json()['id']}"

    def state() -> str:
        return api(mintlog, key, "GET", monitor_path).json()["status"]["state"]

    assert wait_until(lambda: state() == "up"), mintlog.logs()
    target.status = 503
    assert wait_until(lambda: state() == "down"), mintlog.logs()
    monitor = api(mintlog, key, "GET", monitor_path).json()
    assert monitor["status"]["consecutive_failures"] >= 2
    assert "503" in monitor["status"]["last_error"]

    def triggered() -> list[dict[str, Any]]:
        return api(mintlog, key, "GET", "/v1/incidents", status="triggered").json()["items"]

    incidents = wait_until(triggered)
    assert len(incidents) == 1, mintlog.logs()
    assert "shop" in incidents[0]["title"]
    incident_id = incidents[0]["id"]

    found = mintlog.wait_for_total(key, {"query": "service:uptime fields.ok:false", "from": "now-1h"}, 2)
    assert found["total"] >= 2, found
    assert found["events"][0]["fields"]["monitor_name"] == "shop"

    target.status = 200
    assert wait_until(lambda: state() == "up"), mintlog.logs()

    def resolved() -> bool:
        return api(mintlog, key, "GET", f"/v1/incidents/{incident_id}").json()["status"] == "resolved"

    assert wait_until(resolved), mintlog.logs()
    assert api(mintlog, key, "GET", "/v1/incidents", status="triggered").json()["items"] == []

    report = api(mintlog, key, "GET", f"{monitor_path}/sla", **{"from": "now-1h"}).json()
    assert report["outages"] == 1, report
    assert report["downtime_seconds"] > 0
    assert report["failed_checks"] >= 2
    assert report["uptime_percent"] < 100
