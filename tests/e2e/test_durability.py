"""Crash and shutdown behaviour of the all-in-one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.harness import MintlogProcess, nats_server_pids


def test_kill_9_after_202_loses_nothing_and_duplicates_nothing(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory()
    mintlog.start()
    key = mintlog.bootstrap("durable")
    for batch in range(10):
        events = [
            {"message": f"event {batch}-{i}", "service": "durable", "fields": {"n": batch * 100 + i}}
            for i in range(100)
        ]
        response = mintlog.ingest(key, {"events": events})
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 100
    mintlog.kill9()

    # The nats-server child must not outlive its parent (PR_SET_PDEATHSIG), and must not block a restart.
    deadline = time.monotonic() + 10
    while nats_server_pids(mintlog.data_dir / "nats") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert nats_server_pids(mintlog.data_dir / "nats") == []

    mintlog.start()
    answer = mintlog.wait_for_total(key, {"service": "durable", "size": 1000}, 1000, timeout_seconds=30)
    assert answer["total"] == 1000
    assert len(answer["events"]) == 1000
    assert len({event["id"] for event in answer["events"]}) == 1000
    assert {event["fields"]["n"] for event in answer["events"]} == set(range(1000))
    time.sleep(1.5)  # anything redelivered after the restart has been indexed by now
    assert mintlog.search(key, {"service": "durable", "size": 1}).json()["total"] == 1000
    assert mintlog.stop() == 0


def test_sigterm_stops_cleanly_and_leaves_no_nats_server(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory()
    mintlog.start()
    key = mintlog.bootstrap("demo")
    assert mintlog.ingest(key, {"events": [{"message": "before shutdown", "service": "term"}]}).status_code == 202
    assert mintlog.stop() == 0
    assert nats_server_pids(mintlog.data_dir / "nats") == []
    mintlog.start()
    assert mintlog.wait_for_total(key, {"service": "term"}, 1)["total"] == 1
    assert mintlog.stop() == 0


def test_ingest_answers_503_while_the_bus_is_down(mintlog_factory: Callable[..., MintlogProcess]) -> None:
    mintlog = mintlog_factory(MINTLOG_NATS__PUBLISH_TIMEOUT_SECONDS="1")
    mintlog.start()
    key = mintlog.bootstrap("demo")
    assert mintlog.ingest(key, {"events": [{"message": "warm up", "service": "bus"}]}).status_code == 202
    pids = nats_server_pids(mintlog.data_dir / "nats")
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGSTOP)  # frozen, not dead: the bus neither answers nor gets restarted
    try:
        response = mintlog.ingest(key, {"events": [{"message": "during outage", "service": "bus"}]})
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["code"] == "service_unavailable"
        ready = httpx.get(f"{mintlog.ingest_url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["bus"] != "ok"
    finally:
        os.kill(pids[0], signal.SIGCONT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        response = mintlog.ingest(key, {"events": [{"message": "after outage", "service": "bus"}]})
        if response.status_code == 202:
            break
        time.sleep(0.2)
    assert response.status_code == 202
    assert mintlog.stop() == 0


def test_embedded_nats_is_restarted_when_it_dies(mintlog_factory: Callable[..., MintlogProcess]) -> None:
    mintlog = mintlog_factory()
    mintlog.start()
    key = mintlog.bootstrap("demo")
    pids = nats_server_pids(mintlog.data_dir / "nats")
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    status = 0
    while time.monotonic() < deadline:
        status = mintlog.ingest(key, {"events": [{"message": "after restart", "service": "phoenix"}]}).status_code
        if status == 202:
            break
        time.sleep(0.2)
    assert status == 202
    assert mintlog.wait_for_total(key, {"service": "phoenix"}, 1, timeout_seconds=15)["total"] >= 1
    metrics = httpx.get(f"{mintlog.ingest_url}/metrics").text
    restarts = [line for line in metrics.splitlines() if line.startswith("mintlog_embedded_nats_restarts_total")]
    assert float(restarts[0].split()[-1]) >= 1
    assert mintlog.stop() == 0


def test_cli_contract(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINTLOG_")}
    env["MINTLOG_DATA_DIR"] = str(tmp_path / "data")

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mintlog", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    unknown = cli("run", "--role=ingest,bogus")
    assert unknown.returncode == 2
    assert "bogus" in unknown.stderr
    assert "choose from" in unknown.stderr

    assert cli("run", MINTLOG_ROLES="nope").returncode == 2

    bad_port = cli("config", "show", MINTLOG_HTTP__API_PORT="http")
    assert bad_port.returncode == 2
    assert "MINTLOG_HTTP__API_PORT='http'" in bad_port.stderr

    shown = cli("config", "show", MINTLOG_DATABASE__URL="postgresql+asyncpg://u:pw@localhost/db")
    assert shown.returncode == 0
    assert "MINTLOG_DATABASE__URL=postgresql+asyncpg://u:****@localhost/db" in shown.stdout

    boot = cli("admin", "bootstrap", "--tenant", "Demo Co")
    assert boot.returncode == 0, boot.stderr
    # Standard output is the key and nothing else (scripts capture it); what was created is logged on stderr.
    assert boot.stdout.startswith("mlk_")
    assert boot.stdout.splitlines() == [boot.stdout.strip()]
    assert "demo-co" in boot.stderr

    assert cli("db", "downgrade", "base").returncode == 0
    assert cli("db", "upgrade").returncode == 0


def test_ingest_answers_503_when_the_stream_is_full(mintlog_factory: Callable[..., MintlogProcess]) -> None:
    # Without the pipeline nothing drains LOGS_RAW, so a small stream fills up.
    intake_only = mintlog_factory(MINTLOG_NATS__STREAM_MAX_BYTES=str(1024 * 1024), MINTLOG_ROLES="ingest,api")
    intake_only.start()
    key = intake_only.bootstrap("demo")
    events = [{"message": "x" * 1000, "service": "full", "fields": {"i": i}} for i in range(200)]
    statuses: list[int] = []
    response = intake_only.ingest(key, {"events": events})
    for _ in range(20):
        statuses.append(response.status_code)
        if response.status_code != 202:
            break
        response = intake_only.ingest(key, {"events": events})
    assert statuses[0] == 202
    assert statuses[-1] == 503, statuses
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    assert intake_only.stop() == 0

    # With the pipeline back, everything answered 202 becomes searchable, the refused batch never does, and
    # consumed messages free the stream for new batches.
    # A raw batch leaves LOGS_RAW once it is archived too: a short archive age frees the tiny stream at once.
    everything = mintlog_factory(
        data_dir=intake_only.data_dir,
        MINTLOG_NATS__STREAM_MAX_BYTES=str(1024 * 1024),
        MINTLOG_ARCHIVE__MAX_AGE_SECONDS="0.2",
    )
    everything.start()
    accepted = 200 * statuses.count(202)
    answer = everything.wait_for_total(key, {"service": "full", "size": 1}, accepted, timeout_seconds=20)
    assert answer["total"] == accepted
    time.sleep(0.5)
    assert everything.search(key, {"service": "full", "size": 1}).json()["total"] == accepted
    assert everything.ingest(key, {"events": events}).status_code == 202
    assert everything.stop() == 0
