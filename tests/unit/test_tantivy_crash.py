"""`kill -9` of a process in the middle of `TantivyLogStore.write`: every returned write survives, once.

A child process writes batches in a loop (each batch spans two tenants and two days, so four partitions
are committed one after the other) and prints a batch's number once `write` returned. The test kills it
with SIGKILL, reopens the store, checks every confirmed batch is there exactly once, retries the batch
that was in flight, and does it all again on the same directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import LogEvent
from mintlog.ports.logstore import SearchQuery
from mintlog.query.filters import equals

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

MiB = 1024 * 1024
TENANTS = ("acme", "globex")
EVENTS_PER_PARTITION = 500
START = datetime(2024, 3, 9, 23, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import asyncio, sys
from pathlib import Path
from mintlog.adapters.logstore.tantivy import TantivyLogStore
from tests.unit.test_tantivy_crash import batch_events

async def main(root: Path, first_batch: int) -> None:
    store = TantivyLogStore(root, writer_heap_bytes=16 * 1024 * 1024, max_open_writers=2)
    await store.start()
    batch_number = first_batch
    while True:
        await store.write(batch_events(batch_number))
        print(batch_number, flush=True)
        batch_number += 1

asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
"""


def batch_events(batch_number: int) -> list[LogEvent]:
    """The events of one batch: 500 per (tenant, day), on both sides of a UTC midnight, in four partitions."""
    events: list[LogEvent] = []
    for tenant in TENANTS:
        for index in range(2 * EVENTS_PER_PARTITION):
            timestamp = START + timedelta(
                hours=index // EVENTS_PER_PARTITION,
                seconds=index % EVENTS_PER_PARTITION,
                microseconds=batch_number,
            )
            events.append(
                LogEvent(
                    id=f"b{batch_number:04d}-{index:04d}",
                    tenant_id=tenant,
                    timestamp=timestamp,
                    received_at=timestamp,
                    service="checkout",
                    level="info",
                    message=f"order {index} of batch {batch_number} processed",
                    host="web-1",
                    fields={"batch": batch_number},
                )
            )
    return events


def run_and_kill(root: Path, first_batch: int, kill_delay_seconds: float) -> list[int]:
    """Run the writer child, SIGKILL it soon after its fourth confirmed write; the batches it confirmed."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(first_batch)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    confirmed: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(confirmed) < 4 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            confirmed.append(int(line))
        time.sleep(kill_delay_seconds)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        remaining_output, errors = child.communicate(timeout=30)
    confirmed.extend(int(line) for line in remaining_output.split())
    assert confirmed, f"the writer child confirmed nothing: {errors}"
    return confirmed


async def batch_ids(store: TantivyLogStore, tenant: str, batch_number: int) -> tuple[int, list[str]]:
    page = await store.search(
        SearchQuery(tenant, equals("fields.batch", batch_number), size=10_000, total_cap=1_000_000)
    )
    return page.total, sorted(event.id for event in page.events)


async def test_every_returned_write_survives_kill_9_exactly_once(tmp_path: Path) -> None:
    next_batch = 0
    # One write takes a few tens of milliseconds: the delays land the kill at different points inside it.
    for kill_delay_seconds in (0.0, 0.008, 0.016, 0.024, 0.032):
        confirmed = await asyncio.to_thread(run_and_kill, tmp_path, next_batch, kill_delay_seconds)
        in_flight = confirmed[-1] + 1

        store = TantivyLogStore(tmp_path, writer_heap_bytes=16 * MiB, max_open_writers=2)
        await store.start()
        try:
            for batch_number in range(confirmed[-1] + 1):
                expected_ids = sorted({event.id for event in batch_events(batch_number)})
                for tenant in TENANTS:
                    assert await batch_ids(store, tenant, batch_number) == (len(expected_ids), expected_ids)
            partly_written, _ids = await batch_ids(store, TENANTS[0], in_flight)
            assert partly_written <= 2 * EVENTS_PER_PARTITION

            await store.write(batch_events(in_flight))  # the retry of the write that never returned

            for tenant in TENANTS:
                total, _ids = await batch_ids(store, tenant, in_flight)
                assert total == 2 * EVENTS_PER_PARTITION
                everything = await store.search(SearchQuery(tenant, size=0, total_cap=1_000_000))
                assert everything.total == (in_flight + 1) * 2 * EVENTS_PER_PARTITION
        finally:
            await store.close()
        next_batch = in_flight + 1
