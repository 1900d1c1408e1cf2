"""No monitor transition is lost: the uptime role runs in its own `mintlog run` process whose bus connection the
test can cut (a TCP proxy to the shared NATS); the other roles run in a second process on the same PostgreSQL
and NATS. The bus is cut, the target fails, the `down` state is stored but its alert event cannot be
published, and the uptime process is killed with SIGKILL. No incident exists. The bus comes back and the uptime
process restarts: its outbox publishes the stored transition and exactly one incident opens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.distributed.cluster import CuttableProxy, TcpProxy
from tests.e2e.harness import MintlogProcess
from tests.e2e.test_uptime_process import FlippableTarget, api, wait_until
from tests.services import SHARED_STREAMS_ENV

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxy(nats_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(nats_url)
    forwarder = CuttableProxy(f"{parts.hostname}:{parts.port}")
    forwarder.start()
    try:
        yield forwarder
    finally:
        forwarder.cut()


def test_a_transition_stored_before_a_kill_9_with_the_bus_down_opens_its_incident_after_restart(
    tmp_path: Path, nats_url: str, postgres_database_url: str, proxy: TcpProxy
) -> None:
    common = {
        "MINTLOG_DATABASE__URL": postgres_database_url,
        "MINTLOG_EGRESS_ALLOW": "127.0.0.0/8",
        "MINTLOG_UPTIME__MIN_INTERVAL_SECONDS": "1",
        "MINTLOG_UPTIME__POLL_SECONDS": "0.1",
        "MINTLOG_NATS__PUBLISH_TIMEOUT_SECONDS": "1",
        **SHARED_STREAMS_ENV,
    }
    others = MintlogProcess(
        data_dir=tmp_path / "others",
        extra_env={**common, "MINTLOG_NATS__URL": nats_url, "MINTLOG_ROLES": "ingest,pipeline,api,alert,notify"},
    )
    uptime_env = {**common, "MINTLOG_NATS__URL": f"nats://127.0.0.1:{proxy.port}", "MINTLOG_ROLES": "ingest,api,uptime"}
    uptime = MintlogProcess(data_dir=tmp_path / "uptime", extra_env=uptime_env)
    with FlippableTarget() as target:
        try:
            others.start()
            uptime.start()
            key = others.bootstrap("outbox")
            created = api(
                others,
                key,
                "POST",
                "/v1/uptime/monitors",
                {
                    "name": "shop",
                    "check": {"type": "http", "url": target.url},
                    "interval_seconds": 1,
                    "timeout_seconds": 0.5,
                    "down_after": 1,
                },
            )
            assert created.status_code == 201, created.text
            monitor_path = f"/v1/uptime/monitors/{created.json()['id']}"

            def state() -> str:
                return api(others, key, "GET", monitor_path).json()["status"]["state"]

            assert wait_until(lambda: state() == "up"), uptime.logs()

            proxy.cut()
            target.status = 503
            assert wait_until(lambda: state() == "down"), uptime.logs()
            uptime.kill9()

            def incidents() -> list[dict[str, object]]:
                return api(others, key, "GET", "/v1/incidents").json()["items"]

            time.sleep(3)
            assert incidents() == [], uptime.logs()

            proxy.start()
            restarted = MintlogProcess(
                data_dir=tmp_path / "uptime",
                extra_env=uptime_env,
                ingest_port=uptime.ingest_port,
                api_port=uptime.api_port,
            )
            restarted.start()
            try:
                opened = wait_until(incidents, timeout_seconds=60)
                assert len(opened) == 1, restarted.logs()
                assert opened[0]["status"] == "triggered"
                assert "shop" in str(opened[0]["title"])
                time.sleep(3)  # later sweeps and checks of the still-down monitor open nothing more
                assert len(incidents()) == 1
            finally:
                restarted.cleanup()
        finally:
            uptime.cleanup()
            others.cleanup()
