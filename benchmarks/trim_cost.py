"""What handing freed memory back (`FreedMemoryReleaser`, glibc `malloc_trim`) costs a process writing Tantivy.

    .venv/bin/python -m benchmarks.trim_cost --seconds 240 --interval 0    # never trims
    .venv/bin/python -m benchmarks.trim_cost --seconds 240 --interval 60   # the default

Writes batches of 2,000 generated events into a fresh `TantivyLogStore` (one tenant, one day partition, so
merges run) as fast as it can for `--seconds`, trimming every `--interval` seconds after a write, and prints
the events written, the write p50/p99, how long each trim took (median, max) and the process's `RssAnon` at
the end (after the store closed).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mintlog.adapters.logstore import freed_memory
from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import LogEvent

BATCH = 2000
WORDS = ["timeout", "served", "user", "cart", "payment", "retry", "cache", "miss", "db", "slow"]


def events(first: int, rng: random.Random, now: datetime) -> list[LogEvent]:
    return [
        LogEvent(
            id=f"e{number}",
            tenant_id="acme",
            timestamp=now + timedelta(microseconds=number),
            received_at=now,
            service=rng.choice(["web", "api", "db"]),
            level=rng.choice(["info", "error"]),
            message=" ".join(rng.choice(WORDS) for _ in range(8)) + f" {rng.randint(0, 10**6)}",
            host=f"h{rng.randint(1, 6)}",
            fields={"user_id": f"u{rng.randint(1, 50000)}", "status": rng.choice([200, 404, 500])},
        )
        for number in range(first, first + BATCH)
    ]


async def measure(seconds: float, interval: float) -> str:
    trims: list[float] = []
    real = freed_memory.malloc_trim_function()

    def timed(pad: int) -> int:
        started = time.perf_counter()
        result = real(pad) if real is not None else 0
        trims.append((time.perf_counter() - started) * 1000)
        return result

    freed_memory.malloc_trim_function = lambda: timed
    store = TantivyLogStore(Path(tempfile.mkdtemp(prefix="trim-cost-")), release_freed_memory_seconds=interval)
    await store.start()
    rng, written, writes = random.Random(1), 0, list[float]()
    now, started = datetime.now(UTC), time.monotonic()
    while time.monotonic() - started < seconds:
        batch = events(written, rng, now)
        began = time.perf_counter()
        await store.write(batch)
        writes.append((time.perf_counter() - began) * 1000)
        written += len(batch)
    await store.close()
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    trimmed = f"median {statistics.median(trims):.1f} ms, max {max(trims):.1f} ms" if trims else "none"
    return (
        f"{written:,} events, {len(writes)} writes in {seconds:.0f} s; write p50 {statistics.median(writes):.1f} ms,"
        f" p99 {sorted(writes)[int(len(writes) * 0.99)]:.1f} ms; {len(trims)} trims: {trimmed};"
        f" RssAnon {status['RssAnon'].strip()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between trims; 0: never")
    args = parser.parse_args()
    print(asyncio.run(measure(args.seconds, args.interval)))


if __name__ == "__main__":
    main()
