"""`mintlog import` (the real command, as a process) into a real `mintlog run`: a mixed directory is searchable
with the right service, level and timestamp; an import killed mid-way and run again stores every event
exactly once; progress is plain lines when stderr is not a terminal; rejections are counted and shown; Ctrl-C
prints the summary and exits 130."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess, with_ctrl_c_enabled

pytestmark = pytest.mark.e2e

ALL_TIME = "2000-01-01T00:00:00Z"


def import_command(mintlog: MintlogProcess, key: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "mintlog", "import", *args, "--url", mintlog.ingest_url, "--key", key]


def run_import(mintlog: MintlogProcess, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MINTLOG_")}
    return subprocess.run(
        import_command(mintlog, key, *args), capture_output=True, text=True, timeout=300, env=env, check=False
    )


def exact_count(mintlog: MintlogProcess, key: str, query: str) -> int:
    response = httpx.post(
        f"{mintlog.api_url}/v1/logs/aggregate",
        json={"query": query, "from": ALL_TIME},
        headers={"X-API-Key": key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def wait_for_count(mintlog: MintlogProcess, key: str, query: str, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    count = exact_count(mintlog, key, query)
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        count = exact_count(mintlog, key, query)
    return count


def search(mintlog: MintlogProcess, key: str, query: str, size: int = 100) -> list[dict[str, Any]]:
    response = mintlog.search(key, {"query": query, "from": ALL_TIME, "size": size})
    assert response.status_code == 200, response.text
    return response.json()["events"]


def test_a_mixed_directory_is_searchable_with_service_level_and_timestamp(
    running: tuple[MintlogProcess, str], tmp_path: Path
) -> None:
    mintlog, key = running
    day = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    stamp = day.strftime("%Y-%m-%d %H:%M:%S")
    logs = tmp_path / "logs"
    (logs / "python").mkdir(parents=True)
    (logs / "nginx-error.log").write_text(
        f"{day:%Y/%m/%d %H:%M:%S} [error] 4242#4242: *5 upstream timed out mixedrun\r\n"
        f"{day:%Y/%m/%d %H:%M:%S} [warn] 4242#4242: *6 client sent too large body mixedrun\r\n"
    )
    (logs / "python" / "worker.log.gz").write_bytes(
        gzip.compress(
            "".join(f"{stamp},{n:03d} WARNING worker.jobs: job {n} slow mixedrun\n" for n in range(40)).encode()
        )
    )
    (logs / "api.ndjson").write_text(
        "".join(
            json.dumps(
                {
                    "@timestamp": (day + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
                    "level": "error" if n % 2 else "info",
                    "service": "api",
                    "msg": f"request {n} mixedrun",
                    "http": {"status": 500 if n % 2 else 200},
                }
            )
            + "\n"
            for n in range(10)
        )
    )
    finished = run_import(mintlog, key, str(logs), "--service", "legacy", "--progress-interval", "0.1")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "52 accepted, 0 rejected, 0 failed" in finished.stdout
    assert "\x1b" not in finished.stderr  # not a terminal: plain progress lines, no escape codes
    progress = [line for line in finished.stderr.splitlines() if line.strip()]
    assert progress
    assert all(line.startswith("import: ") for line in progress)
    assert progress[-1].startswith("import: 3/3 files, 52 events accepted")

    assert wait_for_count(mintlog, key, "mixedrun", 52) == 52
    nginx = search(mintlog, key, "service:legacy AND 4242")
    assert sorted(event["level"] for event in nginx) == ["error", "warn"]
    assert all(event["timestamp"] == f"{day:%Y-%m-%dT%H:%M:%S}Z" for event in nginx)
    jobs = search(mintlog, key, "service:legacy AND worker.jobs")
    assert len(jobs) == 40
    assert {event["level"] for event in jobs} == {"warn"}
    assert {event["timestamp"][:19] for event in jobs} == {f"{day:%Y-%m-%dT%H:%M:%S}"}
    api = search(mintlog, key, "service:api AND mixedrun")
    assert len(api) == 10
    assert sum(event["level"] == "error" for event in api) == 5
    assert {event["fields"]["http.status"] for event in api} == {200, 500}
    first = next(event for event in api if event["message"] == "request 0 mixedrun")
    assert first["timestamp"] == day.isoformat().replace("+00:00", "Z")


def test_an_import_killed_mid_way_and_run_again_stores_every_event_exactly_once(
    running: tuple[MintlogProcess, str], tmp_path: Path
) -> None:
    mintlog, key = running
    total = 30_000
    path = tmp_path / "big.log"
    path.write_text("".join(f"INFO resumable line {n} of the interrupted import\n" for n in range(total)))
    args = (str(path), "--service", "interrupted", "--batch-size", "100", "--concurrency", "2")
    env = {name: value for name, value in os.environ.items() if not name.startswith("MINTLOG_")}
    with subprocess.Popen(
        import_command(mintlog, key, *args, "--progress-interval", "0.1"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as first:
        assert first.stderr is not None
        try:
            for line in first.stderr:
                accepted = int(line.split(" events accepted")[0].rsplit(" ", 1)[-1].replace(",", ""))
                if accepted >= 3_000:
                    break
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    stored_before = wait_for_count(mintlog, key, "service:interrupted", 3_000)
    assert 3_000 <= stored_before < total  # killed part-way

    second = run_import(mintlog, key, *args, "--json", "--no-progress")
    assert second.returncode == 0, second.stdout + second.stderr
    summary = json.loads(second.stdout)
    assert summary["accepted"] == total
    assert summary["already_stored"] >= 3_000  # the batches of the first run were recognized by their keys
    assert wait_for_count(mintlog, key, "service:interrupted", total) == total
    time.sleep(2)  # anything stored twice would show up by now
    assert exact_count(mintlog, key, "service:interrupted") == total


def test_the_summary_counts_rejected_events_and_shows_why(running: tuple[MintlogProcess, str], tmp_path: Path) -> None:
    mintlog, key = running
    now = datetime.now(UTC)
    path = tmp_path / "history.ndjson"
    rows = []
    for n in range(20):
        moment = now - timedelta(days=400 if n in (3, 11, 17) else 1)  # the tenant keeps 30 days by event time
        rows.append({"timestamp": moment.isoformat(), "service": "rejections", "message": f"event {n}"})
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    finished = run_import(mintlog, key, str(path), "--batch-size", "8", "--no-progress")
    assert finished.returncode == 1
    assert "17 accepted, 3 rejected, 0 failed" in finished.stdout
    assert "first rejections (3 of 3):" in finished.stdout
    for line in (4, 12, 18):
        assert f"history.ndjson:{line}: `timestamp` is older than this tenant's retention of 30 days" in finished.stdout
    assert wait_for_count(mintlog, key, "service:rejections", 17) == 17


def test_ctrl_c_prints_the_summary_and_exits_130(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("x\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("MINTLOG_")}
    env["MINTLOG_API_KEY"] = "k"
    command = [sys.executable, "-m", "mintlog", "import", str(tmp_path / "a.log"), "--url", "http://127.0.0.1:9"]
    with subprocess.Popen(
        [*with_ctrl_c_enabled(command), "--progress-interval", "0.2", "--retries", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stderr is not None
        # Interrupt once it is retrying a server that does not answer (a fixed sleep raced a slow start).
        # Progress lines every 0.2 s keep `readline` from blocking for long.
        deadline = time.monotonic() + 60
        while "retrying" not in process.stderr.readline():
            assert process.poll() is None, "mintlog import ended before retrying"
            assert time.monotonic() < deadline, "mintlog import never said it was retrying"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "0 accepted" in out
    assert "interrupted: run the same command again" in out
