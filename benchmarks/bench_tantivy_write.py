"""Write throughput and search latency of `TantivyLogStore`.

    .venv/bin/python benchmarks/bench_tantivy_write.py                       # 500k events, batches of 20k
    .venv/bin/python benchmarks/bench_tantivy_write.py --batch 5000 --tenants 10

Events are about 300 bytes as JSON with 4 fields. Each batch is built before its write starts, so only
`write` (encode, idempotency check, index, commit, reload) is timed. The rewrite pass writes batches that
are already stored (the redelivery path). Search latency is measured on the written data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import LogEvent
from mintlog.ports.logstore import SearchQuery
from mintlog.query import parse

MiB = 1024 * 1024
WORDS = [
    *("request", "failed", "succeeded", "user", "order", "payment", "timeout", "retry", "connection"),
    *("database", "cache", "checkout", "gateway", "upstream", "latency", "token", "session", "refresh"),
]
START = datetime(2024, 3, 9, tzinfo=UTC)


def make_batch(batch_number: int, size: int, tenants: int, days: int) -> list[LogEvent]:
    rng = random.Random(batch_number)
    events: list[LogEvent] = []
    for index in range(size):
        timestamp = START + timedelta(microseconds=rng.randrange(days * 86_400_000_000))
        events.append(
            LogEvent(
                id=f"01HX{batch_number:06d}{index:08d}",
                tenant_id=f"tenant-{index % tenants}",
                timestamp=timestamp,
                received_at=timestamp + timedelta(milliseconds=5),
                service=rng.choice(("checkout", "search", "auth", "billing")),
                level=rng.choice(("info", "info", "info", "warn", "error")),
                message=" ".join(rng.choice(WORDS) for _ in range(6)),
                host=f"web-{rng.randrange(20)}",
                fields={
                    "user_id": f"u{rng.randrange(10_000)}",
                    "status": rng.choice((200, 200, 404, 500)),
                    "duration_ms": round(rng.random() * 250, 3),
                    "path": "/api/v1/orders",
                },
            )
        )
    return events


def busy_cpu_seconds() -> float:
    """CPU time used by the whole machine so far (Linux), to tell how much other processes took."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def bench_store(args: argparse.Namespace, root: Path) -> None:
    store = TantivyLogStore(
        root,
        writer_heap_bytes=args.heap_mib * MiB,
        max_open_writers=args.max_open_writers,
    )
    await store.start()
    batches = args.events // args.batch
    sample = make_batch(0, args.batch, args.tenants, args.days)
    size = statistics.mean(len(msgspec.json.encode(event)) for event in sample[:1000])
    print(f"events: {batches * args.batch:,} in batches of {args.batch:,}, about {size:.0f} bytes each as JSON")
    print(f"spread: {args.tenants} tenant(s) x {args.days} day(s)")

    write_seconds: list[float] = []
    write_cpu = 0.0
    machine_before, own_before, loop_started = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    for batch_number in range(batches):
        batch = sample if batch_number == 0 else make_batch(batch_number, args.batch, args.tenants, args.days)
        started, cpu_started = time.perf_counter(), own_cpu_seconds()
        await store.write(batch)
        write_seconds.append(time.perf_counter() - started)
        write_cpu += own_cpu_seconds() - cpu_started
    total = sum(write_seconds)
    others_cpu = busy_cpu_seconds() - machine_before - (own_cpu_seconds() - own_before)
    loop_seconds = time.perf_counter() - loop_started
    p50_ms, p99_ms = percentile(write_seconds, 0.5) * 1000, percentile(write_seconds, 0.99) * 1000
    rate = batches * args.batch / total
    print(f"write:   {rate:>10,.0f} events/s  (batch p50 {p50_ms:.0f} ms, p99 {p99_ms:.0f} ms)")
    cpu_per_event_us = write_cpu / (batches * args.batch) * 1e6
    print(f"         {cpu_per_event_us:.1f} us of CPU per event over all threads, {write_cpu / total:.2f} cores busy")
    print(f"         other processes used {others_cpu:.1f} CPU-s during these {loop_seconds:.1f} s (ideally ~0)")

    rewrite_batches = min(batches, 5)
    started = time.perf_counter()
    for batch_number in range(rewrite_batches):
        await store.write(make_batch(batch_number, args.batch, args.tenants, args.days))
    rewrite_total = time.perf_counter() - started
    print(f"rewrite: {rewrite_batches * args.batch / rewrite_total:>10,.0f} events/s  (all already stored)")

    day_start = START + timedelta(hours=10)
    queries = {
        "newest 50": SearchQuery("tenant-0"),
        "level=error": SearchQuery("tenant-0", parse("level:error")),
        "text 2 words": SearchQuery("tenant-0", parse("payment timeout")),
        "fields.status=500": SearchQuery("tenant-0", parse('fields.status:"500"')),
        "fields.status>=500": SearchQuery("tenant-0", parse("fields.status:>=500")),
        "1 hour, asc": SearchQuery("tenant-0", start=day_start, end=day_start + timedelta(hours=1), order="asc"),
        "all filters": SearchQuery(
            "tenant-0", parse('payment level:(error OR warn) service:checkout fields.status:"500"')
        ),
    }
    for name, query in queries.items():
        latencies: list[float] = []
        page = await store.search(query)
        for _ in range(args.search_runs):
            started = time.perf_counter()
            page = await store.search(query)
            latencies.append((time.perf_counter() - started) * 1000)
        p50_ms, p95_ms = percentile(latencies, 0.5), percentile(latencies, 0.95)
        print(
            f"search {name:<18} p50 {p50_ms:7.2f} ms  p95 {p95_ms:7.2f} ms"
            f"  total {page.total:>9,}  partitions {len(page.partitions)}"
        )
    await store.close()
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_rss_mib:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000, help="events to write")
    parser.add_argument("--batch", type=int, default=20_000, help="events per write call")
    parser.add_argument("--tenants", type=int, default=1, help="tenants the events are spread over")
    parser.add_argument("--days", type=int, default=1, help="days the timestamps are spread over")
    parser.add_argument("--heap-mib", type=int, default=64, help="writer heap per partition, MiB")
    parser.add_argument("--max-open-writers", type=int, default=4)
    parser.add_argument("--search-runs", type=int, default=50, help="timed runs per search")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        root = Path(directory)
        asyncio.run(bench_store(args, root / "store"))


if __name__ == "__main__":
    main()
