"""CPU per event of the embedded store's write path, on the realistic events of `benchmarks/loggen.py`.

    .venv/bin/python -m benchmarks.store_write_cpu --events 300000
    .venv/bin/python -m benchmarks.store_write_cpu --events 300000 --compression lz4

Builds the events first, then times only `TantivyLogStore.write` (encode, index, commit) in batches of
`--batch` into a fresh temporary directory, and prints the events per second (wall), the CPU seconds of the
whole process (every thread, Tantivy's included) per event, and the bytes on disk per event after the
store closes. `--compression` overrides the document store compression of new partitions (e.g. `lz4`,
`zstd(compression_level=3)`); by default the store chooses (`docstore_compression`). Run it from another
tree (`PYTHONPATH=<worktree>`) to compare two versions on the same machine, interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.loggen import events, log_event
from mintlog.adapters.logstore import tantivy_schema
from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import LogEvent

MiB = 1024 * 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _batches(count: int, size: int) -> list[list[LogEvent]]:
    batches: list[list[LogEvent]] = []
    batch: list[LogEvent] = []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for index, raw in enumerate(events(count, start=start, span=timedelta(days=1))):
        batch.append(log_event(raw, tenant_id="bench", event_id=f"bench-{index:012d}"))
        if len(batch) == size:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)
    return batches


async def _write(batches: list[list[LogEvent]], directory: Path) -> tuple[float, float]:
    store = TantivyLogStore(directory / "index", writer_heap_bytes=64 * MiB)
    await store.start()
    cpu, wall = _cpu_seconds(), time.perf_counter()
    for batch in batches:
        await store.write(batch)
    await store.close()
    return _cpu_seconds() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--compression", default=None, help="document store compression of new partitions")
    args = parser.parse_args()
    if args.compression is not None:
        chosen: str = args.compression
        tantivy_schema.docstore_compression = lambda: chosen
    batches = _batches(args.events, args.batch)
    with tempfile.TemporaryDirectory(prefix="mintlog-write-cpu-") as temp:
        cpu, wall = asyncio.run(_write(batches, Path(temp)))
        size = sum(path.stat().st_size for path in Path(temp).rglob("*") if path.is_file())
    # Trees from before the zstd document store have no `docstore_compression`: they write LZ4.
    compression = getattr(tantivy_schema, "docstore_compression", lambda: "lz4")()
    print(
        f"{args.events / wall:,.0f} events/s wall, {cpu / args.events * 1e6:.1f} µs CPU/event, "
        f"{size / args.events:.1f} B/event on disk ({compression})"
    )


if __name__ == "__main__":
    main()
