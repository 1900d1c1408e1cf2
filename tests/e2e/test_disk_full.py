"""A full disk: ingest answers 503 (or, when only the index's disk is full, keeps accepting), `/readyz` and
`/metrics` say so, and once space is back Mintlog recovers by itself within seconds, with every 202'd event
searchable exactly once and nothing dead-lettered.

The full disk is a real tmpfs (mounting needs root, which CI has) holding the data directory, or only its
`index`; a ballast file fills it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import MintlogProcess
from tests.tmpfs import fill, mounted_tmpfs

pytestmark = pytest.mark.e2e

FILESYSTEM_BYTES = 64 * 1024 * 1024
INDEX_FILESYSTEM_BYTES = 32 * 1024 * 1024
EVENTS_PER_BATCH = 50
RECOVERY_SECONDS = 15.0


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs mounted at a fresh directory, unmounted afterwards (a skip fails CI, see conftest)."""
    with mounted_tmpfs(tmp_path / "data", FILESYSTEM_BYTES) as mount_point:
        yield mount_point


@pytest.fixture
def mintlog_on_small_disk(small_filesystem: Path) -> Iterator[MintlogProcess]:
    # The data dir is the mount point itself: the harness writes its log next to it, off the small disk.
    mintlog = MintlogProcess(data_dir=small_filesystem)
    try:
        yield mintlog
    finally:
        mintlog.cleanup()


def metric(url: str, name: str) -> float:
    """The sum of the series `name` (all labels) in `url`'s `/metrics`; 0 when absent."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def readiness_once_not_ready(url: str, timeout_seconds: float) -> httpx.Response:
    """`url`'s `/readyz` answer once it is not `200`, or its last `200` after `timeout_seconds`."""
    deadline = time.monotonic() + timeout_seconds
    ready = httpx.get(f"{url}/readyz", timeout=10)
    while ready.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = httpx.get(f"{url}/readyz", timeout=10)
    return ready


def readiness_once_ready(url: str, timeout_seconds: float) -> httpx.Response:
    """`url`'s `/readyz` answer once it is `200`, or its last answer after `timeout_seconds`."""
    deadline = time.monotonic() + timeout_seconds
    ready = httpx.get(f"{url}/readyz", timeout=10)
    while ready.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = httpx.get(f"{url}/readyz", timeout=10)
    return ready


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
    ready = readiness_once_not_ready(mintlog.ingest_url, timeout_seconds=10)
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

    # The bus is writable again at once; the index (same disk) is ready again after the indexer's next
    # successful write, which its retry pace (every 2 s) and a loaded machine can delay a few seconds.
    ready = readiness_once_ready(mintlog.ingest_url, timeout_seconds=30)
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


@pytest.mark.timeout(240)  # a start, the full index disk outlasting max_deliveries, the recovery, paging
def test_a_full_index_disk_holds_events_on_the_bus_until_space_is_back_without_dead_letters(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    # Two deliveries and the message would be dead-lettered if the refusal counted as the batch's fault.
    mintlog = MintlogProcess(data_dir=data_dir, extra_env={"MINTLOG_PIPELINE__MAX_DELIVERIES": "2"})
    with mounted_tmpfs(data_dir / "index", INDEX_FILESYSTEM_BYTES) as index_disk:
        try:
            mintlog.start(timeout_seconds=60)
            key = mintlog.bootstrap("disk")
            accepted: list[str] = []
            for number in range(3):
                marks, body = batch(number)
                assert mintlog.ingest(key, body).status_code == 202
                accepted.extend(marks)
            assert mintlog.wait_for_total(key, {"service": "disk", "size": 1}, len(accepted))["total"] == len(accepted)

            fill(index_disk / "ballast")
            for number in range(3, 13):  # the bus is on another disk, with room: accepted
                marks, body = batch(number)
                assert mintlog.ingest(key, body).status_code == 202
                accepted.extend(marks)

            ready = readiness_once_not_ready(mintlog.ingest_url, timeout_seconds=20)
            assert ready.status_code == 503, ready.text
            assert "refused" in ready.json()["checks"]["store"], ready.text
            assert ready.json()["checks"]["bus"] == "ok"
            assert httpx.get(f"{mintlog.api_url}/readyz", timeout=10).status_code == 503
            assert metric(mintlog.ingest_url, "mintlog_store_write_failed") == 1
            time.sleep(8)  # several retries, each a delivery, well past MINTLOG_PIPELINE__MAX_DELIVERIES
            assert metric(mintlog.ingest_url, "mintlog_dead_letters_total") == 0
            assert mintlog.search(key, {"service": "disk", "size": 1}).json()["total"] == 3 * EVENTS_PER_BATCH

            (index_disk / "ballast").unlink()
            freed_at = time.monotonic()
            answer = mintlog.wait_for_total(
                key, {"service": "disk", "size": 1}, len(accepted), timeout_seconds=RECOVERY_SECONDS
            )
            assert answer["total"] == len(accepted), f"not all indexed {time.monotonic() - freed_at:.1f}s after"
            ready = httpx.get(f"{mintlog.ingest_url}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            assert metric(mintlog.ingest_url, "mintlog_store_write_failed") == 0

            found = found_marks(mintlog, key)
            assert sorted(found) == sorted(accepted), "an accepted event is missing or stored twice"
            assert metric(mintlog.ingest_url, "mintlog_dead_letters_total") == 0
            assert mintlog.stop() == 0
        finally:
            mintlog.cleanup()
