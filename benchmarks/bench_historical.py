"""Historical data benchmark: the same events as one day, as 1,000 day partitions, and as imported history.

Run (Tantivy, 100,000 events, 1,000 days; about a minute on 2 cores):

    .venv/bin/python -m benchmarks.bench_historical --data-dir /tmp/bench-historical
    .venv/bin/python -m benchmarks.bench_historical --events 100000 --days 1000 --json /tmp/historical.json

The events come from `benchmarks/loggen.py` (seeded) and are written through `LogStore.write` in batches of
`--batch`, three times into three fresh stores:

- `one_day`: every event within one UTC day, received that day (the baseline: one partition);
- `day_partitions`: spread over `--days` days and received on their own day (`received_at = timestamp`),
  so each lands in its day partition: the layout of live traffic, and of every import before month
  partitions existed;
- `imported`: the same spread, received all at once today (an audit import): events more than two days
  older than their arrival go to month partitions (`mintlog.adapters.logstore.periods`), about 33 instead
  of 1,000.

Then each store, reopened (cold reader cache), runs each query `--runs` times after one warm-up, and the
script prints p50/p99 in milliseconds (store call only, no HTTP), the partitions searched and the bytes on
disk per event:

- `newest_50`: every event, newest 50 (what the search page shows first);
- `term_level`: `timeout AND level:error`, newest 50, all time;
- `needle`: `fields.request_id:<id>` for sampled request ids (1 to 8 events each), all time;
- `ten_days`: every event within 10 days in the middle of the span, newest 50.

Not a timed test: numbers depend on the machine; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.loggen import REQUEST_ID_FIELD, events, log_event
from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import LogEvent
from mintlog.ports.logstore import SearchQuery
from mintlog.query import parse

TENANT = "bench"
IMPORTED_AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
MiB = 1024 * 1024
LAYOUTS = ("one_day", "day_partitions", "imported")


@dataclass(frozen=True, slots=True)
class Timing:
    p50_ms: float
    p99_ms: float
    total: int
    partitions: int


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def layout_events(layout: str, count: int, days: int) -> list[LogEvent]:
    """The benchmark's events as `layout` writes them (the same messages and fields in every layout)."""
    midnight = IMPORTED_AT.replace(hour=0)
    if layout == "one_day":
        # One UTC day (ending 1 s early: the generator adds up to 0.8 s of jitter), received on that day.
        start, span = midnight - timedelta(days=3), timedelta(days=1, seconds=-1)
    else:
        start, span = midnight - timedelta(days=days + 3), timedelta(days=days)
    written: list[LogEvent] = []
    for index, raw in enumerate(events(count, start=start, span=span, seed=5)):
        event = log_event(raw, tenant_id=TENANT, event_id=f"bench-{index:09d}")  # received_at = timestamp
        if layout == "imported":
            event = msgspec.structs.replace(event, received_at=IMPORTED_AT)
        written.append(event)
    return written


def disk_bytes(path: Path) -> int:
    return sum(os.path.getsize(Path(root) / name) for root, _dirs, names in os.walk(path) for name in names)


async def load(root: Path, written: list[LogEvent], batch: int) -> float:
    shutil.rmtree(root, ignore_errors=True)
    store = TantivyLogStore(root, writer_heap_bytes=16 * MiB)
    await store.start()
    started = time.perf_counter()
    try:
        for first in range(0, len(written), batch):
            await store.write(written[first : first + batch])
    finally:
        await store.close()  # waits for merges, so the bytes on disk are final
    return time.perf_counter() - started


async def time_queries(root: Path, written: list[LogEvent], runs: int) -> dict[str, Timing]:
    rng = random.Random(9)
    needles = [str(event.fields[REQUEST_ID_FIELD]) for event in rng.sample(written, 10)]
    ordered = sorted(event.timestamp for event in written)
    middle = ordered[len(ordered) // 2]
    span = ordered[-1] - ordered[0]
    window = min(timedelta(days=10), span / 10)
    now = IMPORTED_AT + timedelta(hours=1)
    queries: dict[str, list[SearchQuery]] = {
        "newest_50": [SearchQuery(TENANT, parse(""), now=now)],
        "term_level": [SearchQuery(TENANT, parse("timeout AND level:error"), now=now)],
        "needle": [SearchQuery(TENANT, parse(f"fields.{REQUEST_ID_FIELD}:{needle}"), now=now) for needle in needles],
        "ten_days": [SearchQuery(TENANT, parse(""), now=now, start=middle - window / 2, end=middle + window / 2)],
    }
    store = TantivyLogStore(root, writer_heap_bytes=16 * MiB)
    await store.start()
    timings: dict[str, Timing] = {}
    try:
        for name, variants in queries.items():
            samples: list[float] = []
            page = await store.search(variants[0])  # warm-up
            for run in range(runs):
                query = variants[run % len(variants)]
                started = time.perf_counter()
                page = await store.search(query)
                samples.append((time.perf_counter() - started) * 1000.0)
            timings[name] = Timing(
                p50_ms=statistics.median(samples),
                p99_ms=percentile(samples, 0.99),
                total=page.total,
                partitions=len(page.partitions),
            )
    finally:
        await store.close()
    return timings


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir)
    results: dict[str, Any] = {"events": args.events, "days": args.days, "layouts": {}}
    for layout in LAYOUTS:
        written = layout_events(layout, args.events, args.days)
        root = data_dir / layout
        load_seconds = await load(root, written, args.batch)
        partitions = sum(1 for entry in (root / TENANT).iterdir() if entry.is_dir())
        timings = await time_queries(root, written, args.runs)
        size = disk_bytes(root)
        results["layouts"][layout] = {
            "partitions": partitions,
            "load_seconds": round(load_seconds, 2),
            "bytes_per_event": round(size / args.events, 1),
            "queries": {name: _timing(timing) for name, timing in timings.items()},
        }
        print(f"{layout}: {partitions} partitions, {size / args.events:.0f} bytes/event, load {load_seconds:.1f} s")
        for name, timing in timings.items():
            print(
                f"  {name:<11} p50 {timing.p50_ms:8.2f} ms  p99 {timing.p99_ms:8.2f} ms  "
                f"total {timing.total:>6}  partitions searched {timing.partitions}"
            )
        shutil.rmtree(root, ignore_errors=True)
    return results


def _timing(timing: Timing) -> dict[str, float | int]:
    return {
        "p50_ms": round(timing.p50_ms, 3),
        "p99_ms": round(timing.p99_ms, 3),
        "total": timing.total,
        "partitions_searched": timing.partitions,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000, help="events per LogStore.write")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--data-dir", default="/tmp/bench-historical")
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    figures = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(figures, indent=2))
