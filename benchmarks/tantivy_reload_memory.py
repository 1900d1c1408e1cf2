"""Native memory a Tantivy reader keeps across reloads (issue 19, part 4).

    .venv/bin/python -m benchmarks.tantivy_reload_memory --commits 5000 --reopen-every 0     # reload only
    .venv/bin/python -m benchmarks.tantivy_reload_memory --commits 5000 --reopen-every 500   # as the store does
    .venv/bin/python -m benchmarks.tantivy_reload_memory --latency   # reload + search vs reopen + search
    .venv/bin/python -m benchmarks.tantivy_reload_memory --store --commits 3000 --recycle-every 0     # kept
    .venv/bin/python -m benchmarks.tantivy_reload_memory --store --commits 3000 --recycle-every 1000  # as the store

A writer in a child process commits `--commits` times (200 small documents each, 5 ms apart) into a fresh
index; this process, the reader alone as in the all-in-one's parent, reloads and searches after every commit
it sees, and with `--reopen-every N` opens the index afresh every N reloads instead
(`mintlog.adapters.logstore.tantivy_partitions.RELOADS_BEFORE_REOPEN`). Prints glibc's in-use bytes over all
malloc arenas (`mallinfo2`) relative to the 100th reload, every 500 reloads. Linux with glibc only.

`--store` measures the writing side instead, through the store itself (`TantivyLogStore.write`: the
exactly-once lookup, add, commit, reload): `--commits` writes of 200 events into one partition, with the
writer recycled every `--recycle-every` commits (`tantivy_partitions.COMMITS_BEFORE_RECYCLE`; 0: never).
Prints the memory gained every 500 commits, then how many recycles happened and what the writes that
recycled took against the others (a recycle waits for the writer's merges).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time

import tantivy

DOCUMENTS_PER_COMMIT = 200


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_in_use() -> int:
    """Bytes in use in every malloc arena plus mmapped chunks (glibc's `mallinfo2`)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=True)
    builder.add_integer_field("n", fast=True, stored=True)
    return builder.build()


def write(path: str, commits: int) -> None:
    """The writer child: `commits` commits of `DOCUMENTS_PER_COMMIT` documents."""
    writer = tantivy.Index.open(path).writer(heap_size=50_000_000, num_threads=1)
    for commit in range(commits):
        for number in range(DOCUMENTS_PER_COMMIT):
            writer.add_document(tantivy.Document(body=f"event {commit} {number} hello world", n=commit * 1000 + number))
        writer.commit()
        time.sleep(0.005)
    writer.wait_merging_threads()


def read(commits: int, reopen_every: int) -> None:
    """Reload (or reopen) and search after every commit the writer child makes; print the memory gained."""
    path = tempfile.mkdtemp(prefix="tantivy-reload-")
    tantivy.Index(_schema(), path=path)
    writer = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.tantivy_reload_memory", "--write", path, "--commits", str(commits)]
    )
    index = tantivy.Index.open(path)
    reloads, baseline, last_meta = 0, 0, 0
    while writer.poll() is None:
        meta = os.stat(os.path.join(path, "meta.json")).st_mtime_ns
        if meta == last_meta:
            time.sleep(0.002)
            continue
        last_meta = meta
        reloads += 1
        if reopen_every and reloads % reopen_every == 0:
            index = tantivy.Index.open(path)
        index.reload()
        index.searcher().search(index.parse_query("hello", ["body"]), 10)
        if reloads == 100:
            baseline = malloc_in_use()
        elif reloads > 100 and reloads % 500 == 0:
            print(f"{reloads} reloads: {(malloc_in_use() - baseline) / 2**20:+.2f} MiB", flush=True)
    print(f"{reloads} reloads in all: {(malloc_in_use() - baseline) / 2**20:+.2f} MiB")


def latency(rounds: int = 200) -> None:
    """Median and p99 of a reload + search against a fresh open + search, on an index of 40 commits of 500
    documents (what one search in `RELOADS_BEFORE_REOPEN` pays instead of a reload)."""
    import statistics

    from mintlog.adapters.logstore.tantivy_partitions import _prepare_for_search  # pyright: ignore[reportPrivateUsage]

    path = tempfile.mkdtemp(prefix="tantivy-reload-")
    writer = tantivy.Index(_schema(), path=path).writer(heap_size=50_000_000, num_threads=1)
    for commit in range(40):
        for number in range(500):
            writer.add_document(tantivy.Document(body=f"event {commit} {number} hello world", n=number))
        writer.commit()
    writer.wait_merging_threads()
    reader = _prepare_for_search(tantivy.Index.open(path))

    def reload_and_search() -> None:
        reader.reload()
        reader.searcher().search(reader.parse_query("hello", ["body"]), 10)

    def reopen_and_search() -> None:
        index = _prepare_for_search(tantivy.Index.open(path))
        index.searcher().search(index.parse_query("hello", ["body"]), 10)

    for step in (reload_and_search, reopen_and_search):
        seconds: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - started)
        p99 = sorted(seconds)[int(rounds * 0.99) - 1]
        print(f"{step.__name__}: median {statistics.median(seconds) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms")


def store_commits(commits: int, recycle_every: int) -> None:
    """Write `commits` batches through a `TantivyLogStore` and print its process's memory and recycles."""
    import asyncio
    import statistics
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from mintlog.adapters.logstore import tantivy_partitions
    from mintlog.adapters.logstore.tantivy import TantivyLogStore
    from mintlog.domain.events import LogEvent

    tantivy_partitions.COMMITS_BEFORE_RECYCLE = recycle_every or 2**62
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)

    def batch(commit: int) -> list[LogEvent]:
        return [
            LogEvent(
                id=f"evt-{commit}-{number}",
                tenant_id="acme",
                timestamp=noon + timedelta(microseconds=commit * DOCUMENTS_PER_COMMIT + number),
                received_at=noon,
                service="checkout",
                level="info",
                message=f"request {commit} {number} served in {number % 97} ms",
                host=f"web-{number % 8}",
            )
            for number in range(DOCUMENTS_PER_COMMIT)
        ]

    async def run() -> None:
        store = TantivyLogStore(Path(tempfile.mkdtemp(prefix="tantivy-store-")), writer_heap_bytes=64 * 2**20)
        await store.start()
        baseline = 0
        recycled: list[float] = []
        kept: list[float] = []
        try:
            for commit in range(commits):
                events = batch(commit)
                started = time.perf_counter()
                await store.write(events)
                seconds = time.perf_counter() - started
                (recycled if store.stats().open_writers == 0 else kept).append(seconds)
                if commit == 100:
                    baseline = malloc_in_use()
                elif commit > 100 and commit % 500 == 0:
                    print(f"{commit} commits: {(malloc_in_use() - baseline) / 2**20:+.2f} MiB", flush=True)
            print(f"{commits} commits in all: {(malloc_in_use() - baseline) / 2**20:+.2f} MiB")
        finally:
            await store.close()
        print(f"writes: median {statistics.median(kept) * 1e3:.1f} ms, max {max(kept) * 1e3:.1f} ms")
        if recycled:
            print(
                f"{len(recycled)} recycles: median {statistics.median(recycled) * 1e3:.1f} ms, "
                f"max {max(recycled) * 1e3:.1f} ms"
            )

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--reopen-every", type=int, default=0, help="open the index afresh every N reloads (0: never)")
    parser.add_argument("--latency", action="store_true", help="time a reload + search against a reopen + search")
    parser.add_argument("--store", action="store_true", help="measure the writing side through TantivyLogStore")
    parser.add_argument("--recycle-every", type=int, default=1000, help="with --store: commits per writer (0: never)")
    parser.add_argument("--write", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.latency:
        latency()
    elif args.store:
        store_commits(args.commits, args.recycle_every)
    elif args.write:
        write(args.write, args.commits)
    else:
        read(args.commits, args.reopen_every)


if __name__ == "__main__":
    main()
