"""A full data directory: ingest answers 503, `/readyz` and `/metrics` say so, and once space is back Mintlog
recovers by itself within seconds, with every 202'd event searchable exactly once.

The data directory is a real 64 MiB tmpfs (mounting needs root, which CI has); a ballast file fills it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e

FILESYSTEM_BYTES = 64 * 1024 * 1024
EVENTS_PER_BATCH = 50
RECOVERY_SECONDS = 15.0


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs mounted at a fresh directory, unmounted afterwards (a skip fails CI, see conftest)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "data"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FILESYSTEM_BYTES}", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount_point
    finally:
        for _ in range(50):  # the killed processes' files may take a moment to close
            if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


@pytest.fixture
def mintlog_on_small_disk(small_filesystem: Path) -> Iterator[MintlogProcess]:
    # The data dir is the mount point itself: the harness writes its log next to it, off the small disk.
    mintlog = MintlogProcess(data_dir=small_filesystem)
    try:
        yield mintlog
    finally:
        mintlog.cleanup()


def fill(ballast: Path) -> None:
    """Write `ballast` until the filesystem has no byte left (tmpfs allocates 4 KiB pages)."""
    with ballast.open("wb", buffering=0) as file:
        for chunk_bytes in (1024 * 1024, 4096):
            with contextlib.suppress(OSError):
                while True:
                    file.write(b"\0" * chunk_bytes)


def metric(url: str, name: str) -> float:
    """The sum of the series `name` (all labels) in `url`'s `/metrics`; 0 when absent."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def batch(number: int) -> tuple[list[str], dict[str, Any]]:
    marks = [f"{number}-{index}" for index in range(EVENTS_PER_BATCH)]
    events = [{"message": f"disk {mark} " + "x" * 300, "service": "disk", "fields": {"mark": mark}} for mark in marks]
    return marks, {"events": events}


def found_marks(mintlog: MintlogProcess, key: str) -> list[str]:
    marks: list[str] = []
    cursor: str | None = None
    for _ in range(200):
        body: dict[str, Any] = {"service": "disk", "size": 1000, **({"cursor": cursor} if cursor else {})}
        response = mintlog.search(key, body)
        assert response.status_code == 200, response.text
        answer = response.json()
        marks.extend(event["fields"]["mark"] for event in answer["events"])
        cursor = answer["next_cursor"]
        if cursor is None:
            return marks
    raise AssertionError("paging did not end")


@pytest.mark.timeout(240)  # a start, a full disk, the recovery and paging through every event
def test_a_full_disk_answers_503_and_recovers_by_itself_without_losing_an_event(
    mintlog_on_small_disk: MintlogProcess,
) -> None:
    mintlog = mintlog_on_small_disk
    mintlog.start(timeout_seconds=60)
    key = mintlog.bootstrap("disk")
    accepted: list[str] = []
    sent = 0

    def send() -> httpx.Response:
        nonlocal sent
        marks, body = batch(sent)
        sent += 1
        response = mintlog.ingest(key, body)
        if response.status_code == 202:
            accepted.extend(marks)
        return response

    for _ in range(5):
        assert send().status_code == 202
    assert metric(mintlog.ingest_url, "mintlog_bus_store_write_failed") == 0
    assert metric(mintlog.ingest_url, "mintlog_data_dir_free_bytes") > FILESYSTEM_BYTES / 2

    ballast = mintlog.data_dir / "ballast"
    fill(ballast)
    refused = send()
    for _ in range(20):
        if refused.status_code != 202:
            break
        refused = send()
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) > 0

    # Readiness and metrics name the condition (the store watch looks every second).
    deadline = time.monotonic() + 10
    ready = httpx.get(f"{mintlog.ingest_url}/readyz", timeout=10)
    while ready.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = httpx.get(f"{mintlog.ingest_url}/readyz", timeout=10)
    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "not_ready"
    assert "cannot write its store" in ready.json()["checks"]["bus"]
    assert httpx.get(f"{mintlog.api_url}/readyz", timeout=10).status_code == 503
    assert metric(mintlog.ingest_url, "mintlog_bus_store_write_failed") == 1
    assert metric(mintlog.ingest_url, "mintlog_data_dir_free_bytes") < 1024 * 1024
    # While the disk stays full the server is not restarted (there is no room for it to do better).
    time.sleep(2)
    assert send().status_code == 503
    assert metric(mintlog.ingest_url, "mintlog_bus_store_recoveries_total") == 0

    ballast.unlink()
    freed_at = time.monotonic()
    while (response := send()).status_code != 202:
        assert response.status_code == 503, response.text
        assert time.monotonic() - freed_at < RECOVERY_SECONDS, "ingest did not recover once space was back"
        time.sleep(0.2)
    for _ in range(5):
        assert send().status_code == 202

    ready = httpx.get(f"{mintlog.ingest_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["bus"] == "ok"
    assert metric(mintlog.ingest_url, "mintlog_bus_store_write_failed") == 0
    assert metric(mintlog.ingest_url, "mintlog_bus_store_recoveries_total") >= 1
    assert metric(mintlog.ingest_url, "mintlog_data_dir_free_bytes") > FILESYSTEM_BYTES / 2

    # Nothing accepted is lost, nothing is stored twice.
    answer = mintlog.wait_for_total(key, {"service": "disk", "size": 1}, len(accepted), timeout_seconds=60)
    assert answer["total"] >= len(accepted)
    time.sleep(1.5)  # anything redelivered after the restart has been indexed by now
    found = found_marks(mintlog, key)
    assert len(found) == len(set(found)), "an event is stored twice"
    assert set(accepted) <= set(found), f"{len(set(accepted) - set(found))} accepted events are missing"
    assert set(found) <= {mark for number in range(sent) for mark in batch(number)[0]}
    assert metric(mintlog.ingest_url, "mintlog_dead_letters_total") == 0
    assert mintlog.stop() == 0
