"""A process without an API (here: the pipeline role alone) serves /healthz, /readyz and /metrics on the ops
port, so worker containers get probes and a scrape target; the ingest and api ports stay closed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import free_port, nats_server_pids

pytestmark = pytest.mark.e2e


def test_a_worker_only_process_serves_health_readiness_and_metrics(tmp_path: Path) -> None:
    ops_port, ingest_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MINTLOG_")}
    env.update(
        {
            "MINTLOG_DATA_DIR": str(data_dir),
            "MINTLOG_HTTP__OPS_PORT": str(ops_port),
            "MINTLOG_HTTP__INGEST_PORT": str(ingest_port),
        }
    )
    log = (tmp_path / "mintlog.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mintlog", "run", "--role=pipeline"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        ready: httpx.Response | None = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{ops_port}/readyz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert ready is not None, (tmp_path / "mintlog.log").read_text()
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"bus": "ok", "store": "ok", "database": "ok", "blobs": "ok"}
        assert httpx.get(f"http://127.0.0.1:{ops_port}/healthz", timeout=2).json()["status"] == "ok"
        metrics = httpx.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=2).text
        assert "mintlog_pipeline_lag_seconds" in metrics
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{ingest_port}/healthz", timeout=2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for pid in nats_server_pids(data_dir / "nats"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()
