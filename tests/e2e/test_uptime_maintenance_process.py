"""Maintenance windows and badges in one real `mintlog run` process on embedded defaults: a monitor on a local
target answering 503 inside a window covering now stays in `maintenance` with its checks recorded and searchable
as `in_maintenance` and no incident; deleting the window lets it go down and open one; its badge is served by
the API port with the token alone, and not once revoked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess
from tests.e2e.test_uptime_process import FlippableTarget, api, wait_until

pytestmark = pytest.mark.e2e


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


def test_a_window_holds_a_failing_monitor_in_maintenance_until_it_is_deleted(
    uptime: tuple[MintlogProcess, str, FlippableTarget],
) -> None:
    mintlog, key, target = uptime
    target.status = 503
    monitor = api(
        mintlog,
        key,
        "POST",
        "/v1/uptime/monitors",
        {
            "name": "shop",
            "check": {"type": "http", "url": target.url},
            "interval_seconds": 1,
            "timeout_seconds": 0.5,
            "down_after": 1,
            "paused": True,
        },
    ).json()
    now = datetime.now(UTC)
    window = api(
        mintlog,
        key,
        "POST",
        "/v1/uptime/maintenance-windows",
        {
            "name": "deploy",
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "targets": {"labels": {"source": "uptime"}},
        },
    )
    assert window.status_code == 201, window.text
    assert window.json()["active"] is True
    api(mintlog, key, "POST", f"/v1/uptime/monitors/{monitor['id']}/resume")
    monitor_path = f"/v1/uptime/monitors/{monitor['id']}"

    def status() -> dict[str, Any]:
        return api(mintlog, key, "GET", monitor_path).json()["status"]

    assert wait_until(lambda: status()["state"] == "maintenance"), mintlog.logs()
    badge = api(mintlog, key, "POST", f"{monitor_path}/badge").json()
    svg = httpx.get(f"{mintlog.api_url}{badge['path']}", timeout=30)
    assert svg.status_code == 200, svg.text
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert ">maintenance</text>" in svg.text

    found = mintlog.wait_for_total(key, {"query": "service:uptime fields.in_maintenance:true", "from": "now-1h"}, 3)
    assert found["total"] >= 3, found
    assert status()["state"] == "maintenance"
    assert api(mintlog, key, "GET", "/v1/incidents").json()["items"] == []

    assert api(mintlog, key, "DELETE", f"/v1/uptime/maintenance-windows/{window.json()['id']}").status_code == 204
    assert wait_until(lambda: status()["state"] == "down"), mintlog.logs()
    incidents = wait_until(lambda: api(mintlog, key, "GET", "/v1/incidents", status="triggered").json()["items"])
    assert len(incidents) == 1, mintlog.logs()
    assert wait_until(lambda: ">down</text>" in httpx.get(f"{mintlog.api_url}{badge['path']}", timeout=30).text)

    assert api(mintlog, key, "DELETE", f"{monitor_path}/badge").status_code == 204
    gone = httpx.get(f"{mintlog.api_url}{badge['path']}", timeout=30)
    assert gone.status_code == 404
    assert gone.json()["code"] == "badge_not_found"
