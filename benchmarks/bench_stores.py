"""Search benchmark: load N realistic events into a log store, then time the queries users run most.

Run (10 million events into the embedded store, then the same into OpenSearch, one after the other):

    .venv/bin/python benchmarks/bench_stores.py --store tantivy --events 10000000 --data-dir /tmp/bench-stores
    .venv/bin/python benchmarks/bench_stores.py --store opensearch --opensearch-url http://127.0.0.1:59200 ...

Events come from `benchmarks/loggen.py` (seeded: both stores get identical events) spread over `--days`
days, for one tenant, written through `LogStore.write` in batches of `--batch` (the indexer's path, without
HTTP). Then, in the same process, each query runs `--runs` times after a warm-up:

- needle: `fields.request_id:<id>` for random request ids of the load (1-8 events each), all days;
  then the same ids within the last 24 hours of the data (a `[start, end)` range on the time column);
- common term + level: `timeout AND level:error` (and three more common words), newest 50, all days;
- 24 h histogram: volume per hour split by level over the last 24 hours of the data (`/v1/logs/aggregate`
  with `interval=1h`, `group_by=level`).

It prints p50/p99 in milliseconds (store call only: no HTTP), and the bytes on disk per event against the
raw NDJSON size (Tantivy: the data directory after its merges finish; OpenSearch: the primary store size of
the benchmark's indices after a flush; Tantivy also by index file kind: `.store` documents, `.term` term
dictionaries, `.idx` postings, `.pos` positions, `.fast` columns, `.fieldnorm`). `--reuse` skips loading
when the data is already there.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.loggen import REQUEST_ID_FIELD, events, log_event
from mintlog.bootstrap import build_store
from mintlog.ports.aggregation import AggregateQuery, HistogramGroup, TermsGroup
from mintlog.ports.logstore import LogStore, SearchQuery
from mintlog.query import parse
from mintlog.settings import OpenSearchSettings, Settings, StoreSettings

TENANT = "bench"
START = datetime(2026, 11, 1, tzinfo=UTC)
_encoder = msgspec.json.Encoder()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def open_store(args: argparse.Namespace) -> LogStore:
    if args.store == "tantivy":
        url = f"tantivy://{Path(args.data_dir).resolve() / 'index'}"
        return build_store(Settings(data_dir=args.data_dir, store=StoreSettings(url=url)))
    opensearch = OpenSearchSettings(index_prefix=args.index_prefix)
    return build_store(
        Settings(data_dir=args.data_dir, store=StoreSettings(url=args.opensearch_url, opensearch=opensearch))
    )


async def load(store: LogStore, args: argparse.Namespace) -> tuple[int, list[str]]:
    """Write the events; returns the raw NDJSON bytes and a sample of request ids."""
    rng = random.Random(7)
    raw_bytes = 0
    sampled_ids: list[str] = []
    batch: list[Any] = []
    started = time.perf_counter()
    last_report = started
    written = 0
    for index, raw in enumerate(events(args.events, start=START, span=timedelta(days=args.days))):
        raw_bytes += len(_encoder.encode(raw)) + 1
        if rng.random() < 2000 / args.events:
            sampled_ids.append(raw["fields"][REQUEST_ID_FIELD])
        batch.append(log_event(raw, tenant_id=TENANT, event_id=f"bench-{index:012d}"))
        if len(batch) == args.batch:
            await store.write(batch)
            written += len(batch)
            batch = []
            now = time.perf_counter()
            if now - last_report > 30:
                print(f"  loaded {written:,} events, {written / (now - started):,.0f}/s", flush=True)
                last_report = now
    if batch:
        await store.write(batch)
        written += len(batch)
    elapsed = time.perf_counter() - started
    print(f"loaded {written:,} events in {elapsed:,.0f} s: {written / elapsed:,.0f} events/s (generation included)")
    return raw_bytes, sampled_ids


async def timed(runs: int, make_call: Callable[[int], Awaitable[object]]) -> list[float]:
    for warm_up in range(min(5, runs)):
        await make_call(warm_up)
    samples: list[float] = []
    for run in range(runs):
        started = time.perf_counter()
        await make_call(run)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float], note: str = "") -> None:
    print(
        f"{name:<24} p50 {percentile(samples, 0.5):8.1f} ms   p99 {percentile(samples, 0.99):8.1f} ms"
        f"   mean {statistics.mean(samples):8.1f} ms  {note}"
    )


def directory_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def bytes_by_kind(path: Path) -> dict[str, int]:
    """Bytes of the Tantivy index files under `path` by kind (`.store`, `.term`, `.idx`, `.pos`, `.fast`, ...)."""
    kinds: dict[str, int] = {}
    for file in path.rglob("*"):
        if file.is_file():
            kind = file.suffix or file.name
            kinds[kind] = kinds.get(kind, 0) + file.stat().st_size
    return kinds


async def opensearch_bytes(args: argparse.Namespace) -> int:
    from opensearchpy import AsyncOpenSearch

    client = AsyncOpenSearch(hosts=[args.opensearch_url])
    try:
        pattern = f"{args.index_prefix}-*"
        await client.indices.flush(index=pattern)
        stats = await client.indices.stats(index=pattern, metric="store")
        return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])
    finally:
        await client.close()


async def run(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir)
    if not args.reuse and args.store == "tantivy" and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    ids_file = data_dir / f"{args.store}-load.json"
    store = open_store(args)
    await store.start()
    if args.reuse and ids_file.exists():
        saved = msgspec.json.decode(ids_file.read_bytes())
        raw_bytes, sampled_ids = int(saved["raw_bytes"]), list(saved["ids"])
        print(f"reusing the {args.store} data in {data_dir}")
    else:
        raw_bytes, sampled_ids = await load(store, args)
        ids_file.write_bytes(_encoder.encode({"raw_bytes": raw_bytes, "ids": sampled_ids}))
    kinds: dict[str, int] = {}
    if args.store == "tantivy":
        await store.close()  # waits for merges, so the size on disk is the settled one
        disk_bytes = directory_bytes(data_dir / "index")
        kinds = bytes_by_kind(data_dir / "index")
        store = open_store(args)
        await store.start()
    else:
        disk_bytes = await opensearch_bytes(args)

    end = START + timedelta(days=args.days)
    now = end + timedelta(minutes=1)
    rng = random.Random(3)
    needles = [rng.choice(sampled_ids) for _ in range(args.runs + 5)]

    async def needle(run: int) -> object:
        page = await store.search(
            SearchQuery(TENANT, parse(f"fields.{REQUEST_ID_FIELD}:{needles[run]}"), now=now, size=50)
        )
        assert page.events, f"request id {needles[run]} not found"
        return page

    async def needle_in_a_day(run: int) -> object:
        return await store.search(
            SearchQuery(
                TENANT,
                parse(f"fields.{REQUEST_ID_FIELD}:{needles[run]}"),
                now=now,
                start=end - timedelta(hours=24),
                end=end,
                size=50,
            )
        )

    words = ["timeout", "connection", "payment", "database"]

    async def common(run: int) -> object:
        return await store.search(SearchQuery(TENANT, parse(f"{words[run % 4]} AND level:error"), now=now, size=50))

    histogram_query = AggregateQuery(
        TENANT,
        now=now,
        start=end - timedelta(hours=24),
        end=end,
        groups=(HistogramGroup(3600), TermsGroup("level")),
    )

    async def histogram(run: int) -> object:
        # Each run's window ends `run` seconds earlier: the same work, but never an answer OpenSearch's shard
        # request cache (which keeps `size: 0` results) could serve from a previous run.
        shift = timedelta(seconds=run)
        return await store.aggregate(
            AggregateQuery(
                TENANT, now=now, start=end - timedelta(hours=24) - shift, end=end - shift, groups=histogram_query.groups
            )
        )

    print(f"store: {args.store}; events: {args.events:,} over {args.days} day(s); runs per query: {args.runs}")
    report("needle (request id)", await timed(args.runs, needle))
    report("needle, last 24 h", await timed(args.runs, needle_in_a_day), "(the same ids with a [start, end) range)")
    report("common term + level", await timed(args.runs, common), "(newest 50 of `timeout AND level:error` etc.)")
    result = await store.aggregate(histogram_query)
    report("24h histogram by level", await timed(args.runs, histogram), f"({result.total:,} events in 24 h)")
    print(
        f"disk: {disk_bytes / 2**20:,.0f} MiB for {raw_bytes / 2**20:,.0f} MiB of raw NDJSON: "
        f"{disk_bytes / args.events:.0f} B/event vs {raw_bytes / args.events:.0f} B/event raw, "
        f"ratio {disk_bytes / raw_bytes:.3f}"
    )
    if kinds:
        print(
            "by file kind (B/event): "
            + "  ".join(
                f"{kind} {size / args.events:.1f}"
                for kind, size in sorted(kinds.items(), key=lambda item: -item[1])
                if size / args.events >= 0.05
            )
        )
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["tantivy", "opensearch"], default="tantivy")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--data-dir", default="/tmp/mintlog-bench-stores")
    parser.add_argument("--opensearch-url", default="http://127.0.0.1:59200")
    parser.add_argument("--index-prefix", default="mintlogbench")
    parser.add_argument("--reuse", action="store_true", help="skip loading if this store was loaded before")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
