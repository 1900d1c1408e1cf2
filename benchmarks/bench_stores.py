"""Search benchmark: load N realistic events into a log store, then time the queries users run most.

Run (10 million events into the embedded store, then the same into OpenSearch, one after the other):

    .venv/bin/python -m benchmarks.bench_stores --store tantivy --events 10000000 --data-dir /tmp/bench-stores
    .venv/bin/python -m benchmarks.bench_stores --store opensearch --opensearch-url http://127.0.0.1:59200 ...
    .venv/bin/python -m benchmarks.bench_stores --store tantivy --events 200000 --data-dir /tmp/bench-200k \
        --reuse --json /tmp/bench-200k/result.json

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
dictionaries, `.idx` postings, `.pos` positions, `.fast` columns, `.fieldnorm`). `--json PATH` also writes
the figures as JSON (`store`, `events`, `days`, `load_events_per_s`, `bytes_per_event`,
`raw_bytes_per_event`, `bytes_ratio_to_raw`, `queries.{needle,needle_24h,common_term_filter,histogram_24h}`
with `p50_ms`, `p99_ms`, `runs`).

Where the data lives: Tantivy in `--data-dir`/index; OpenSearch in the indices `--index-prefix`-bench-*
(one prefix per data set, e.g. `mintlogbench1m` and `mintlogbench200k`). After a load, `--data-dir`/
`bench-meta.json` records the store, the number of events, the days, the raw NDJSON bytes, the sampled
request ids and the load rate. Without `--reuse` the data is loaded afresh (the Tantivy data directory or
the OpenSearch indices of the prefix are deleted first). `--reuse` keeps the data when the store already
holds exactly `--events` events of the tenant: the raw bytes and ids then come from `bench-meta.json` (or,
when it is missing, from regenerating the seeded events without writing them), and the load rate reported
is the one recorded when the data was loaded (`null` if unknown); otherwise it loads afresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.loggen import REQUEST_ID_FIELD, events, log_event
from mintlog.adapters.logstore.opensearch_layout import validate_index_prefix
from mintlog.launch.bootstrap import build_store
from mintlog.ports.aggregation import AggregateQuery, HistogramGroup, TermsGroup
from mintlog.ports.logstore import LogStore, SearchQuery
from mintlog.query import parse
from mintlog.settings import OpenSearchSettings, Settings, StoreSettings

TENANT = "bench"
START = datetime(2026, 11, 1, tzinfo=UTC)
META_FILE = "bench-meta.json"
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


@dataclass
class LoadInfo:
    """What the queries and the bytes-per-event figures need to know about the loaded events."""

    raw_bytes: int = 0
    sampled_ids: list[str] = field(default_factory=lambda: [])
    load_events_per_s: float | None = None
    load_seconds: float | None = None
    loaded_in_this_run: bool = False


def seeded_events(args: argparse.Namespace, info: LoadInfo) -> Iterator[tuple[int, dict[str, Any]]]:
    """The run's events (index, raw event); counts their raw NDJSON bytes and samples request ids into `info`."""
    rng = random.Random(7)
    for index, raw in enumerate(events(args.events, start=START, span=timedelta(days=args.days))):
        info.raw_bytes += len(_encoder.encode(raw)) + 1
        if rng.random() < 2000 / args.events:
            info.sampled_ids.append(raw["fields"][REQUEST_ID_FIELD])
        yield index, raw


async def load(store: LogStore, args: argparse.Namespace) -> LoadInfo:
    """Write the events; returns their raw NDJSON bytes, a sample of request ids and the load rate."""
    info = LoadInfo(loaded_in_this_run=True)
    batch: list[Any] = []
    started = time.perf_counter()
    last_report = started
    written = 0
    for index, raw in seeded_events(args, info):
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
    info.load_seconds = elapsed
    info.load_events_per_s = written / elapsed
    print(f"loaded {written:,} events in {elapsed:,.0f} s: {written / elapsed:,.0f} events/s (generation included)")
    return info


def read_meta(data_dir: Path, store: str) -> dict[str, Any] | None:
    """`bench-meta.json` of `store` in `data_dir`, else the older `{store}-load.json` (raw bytes and ids only)."""
    meta_path = data_dir / META_FILE
    if meta_path.exists():
        meta = msgspec.json.decode(meta_path.read_bytes())
        if isinstance(meta, dict) and meta.get("store") == store:
            return meta
    legacy = data_dir / f"{store}-load.json"
    if legacy.exists():
        return msgspec.json.decode(legacy.read_bytes())
    return None


def write_meta(args: argparse.Namespace, info: LoadInfo) -> None:
    meta = {
        "store": args.store,
        "events": args.events,
        "days": args.days,
        "start": START.isoformat(),
        "tenant": TENANT,
        "index_prefix": args.index_prefix if args.store == "opensearch" else None,
        "raw_bytes": info.raw_bytes,
        "ids": info.sampled_ids,
        "load_events_per_s": info.load_events_per_s,
        "load_seconds": info.load_seconds,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (Path(args.data_dir) / META_FILE).write_bytes(_encoder.encode(meta))


def meta_matches(meta: dict[str, Any] | None, args: argparse.Namespace) -> bool:
    """Whether `meta` describes this run's events (a legacy file without `events`/`days` is taken as is)."""
    return (
        meta is not None
        and "raw_bytes" in meta
        and "ids" in meta
        and meta.get("events", args.events) == args.events
        and meta.get("days", args.days) == args.days
    )


async def events_held(store: LogStore) -> int:
    """How many events of the benchmark's tenant the store holds."""
    return (await store.aggregate(AggregateQuery(TENANT, now=datetime.now(UTC)))).total


async def delete_opensearch_indices(args: argparse.Namespace) -> None:
    """Delete the indices of `--index-prefix` (only `{prefix}-*`: a prefix never holds a `-`)."""
    from opensearchpy import AsyncOpenSearch

    client = AsyncOpenSearch(hosts=[args.opensearch_url])
    try:
        names = sorted(await client.indices.get(index=f"{args.index_prefix}-*"))
        for first in range(0, len(names), 50):
            await client.indices.delete(index=",".join(names[first : first + 50]))
        if names:
            print(f"deleted {len(names)} OpenSearch indices {args.index_prefix}-*")
    finally:
        await client.close()


async def wipe(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir)
    if args.store == "tantivy":
        if data_dir.exists():
            shutil.rmtree(data_dir)
    else:
        await delete_opensearch_indices(args)
        (data_dir / META_FILE).unlink(missing_ok=True)
        (data_dir / f"{args.store}-load.json").unlink(missing_ok=True)


async def reusable(args: argparse.Namespace) -> tuple[LogStore, LoadInfo] | None:
    """The started store and what is known of its events, if it already holds exactly `--events` events."""
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(args)
    await store.start()
    held = await events_held(store)
    if held != args.events:
        print(f"--reuse: the {args.store} store holds {held:,} events of tenant {TENANT!r}, not {args.events:,}")
        await store.close()
        return None
    meta = read_meta(data_dir, args.store)
    if meta is not None and meta_matches(meta, args):
        rate = meta.get("load_events_per_s")
        info = LoadInfo(
            raw_bytes=int(meta["raw_bytes"]),
            sampled_ids=list(meta["ids"]),
            load_events_per_s=float(rate) if rate is not None else None,
            load_seconds=meta.get("load_seconds"),
        )
    else:
        print(f"no {META_FILE} for these events: regenerating them (not written) for their raw size and ids")
        info = LoadInfo()
        for _ in seeded_events(args, info):
            pass
        write_meta(args, info)
    print(f"reusing the {held:,} events of the {args.store} store ({data_dir})")
    return store, info


async def timed(runs: int, make_call: Callable[[int], Awaitable[object]]) -> list[float]:
    for warm_up in range(min(5, runs)):
        await make_call(warm_up)
    samples: list[float] = []
    for run in range(runs):
        started = time.perf_counter()
        await make_call(run)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float], note: str = "") -> dict[str, float | int]:
    """Print one query's line; returns its figures for `--json`."""
    figures: dict[str, float | int] = {
        "p50_ms": percentile(samples, 0.5),
        "p99_ms": percentile(samples, 0.99),
        "mean_ms": statistics.mean(samples),
        "max_ms": max(samples),
        "runs": len(samples),
    }
    print(
        f"{name:<24} p50 {figures['p50_ms']:8.1f} ms   p99 {figures['p99_ms']:8.1f} ms"
        f"   mean {figures['mean_ms']:8.1f} ms  {note}"
    )
    return figures


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


async def prepare(args: argparse.Namespace) -> tuple[LogStore, LoadInfo]:
    """The started store holding this run's events: reused (`--reuse`, same count) or loaded afresh."""
    if args.reuse:
        found = await reusable(args)
        if found is not None:
            return found
        print("loading afresh")
    await wipe(args)
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    store = open_store(args)
    await store.start()
    info = await load(store, args)
    write_meta(args, info)
    return store, info


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir)
    if args.store == "opensearch":
        validate_index_prefix(args.index_prefix)
    store, info = await prepare(args)
    sampled_ids = info.sampled_ids
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

    # Each run's window ends `run` seconds (plus this invocation's own random fraction of a second) earlier:
    # the same work, but never an answer OpenSearch's shard request cache (which keeps `size: 0` results)
    # could serve from a previous run, of this invocation or of an earlier one on the same index.
    invocation_shift = timedelta(microseconds=secrets.randbelow(1_000_000))

    async def histogram(run: int) -> object:
        shift = invocation_shift + timedelta(seconds=run)
        return await store.aggregate(
            AggregateQuery(
                TENANT, now=now, start=end - timedelta(hours=24) - shift, end=end - shift, groups=histogram_query.groups
            )
        )

    print(f"store: {args.store}; events: {args.events:,} over {args.days} day(s); runs per query: {args.runs}")
    queries: dict[str, dict[str, float | int]] = {}
    queries["needle"] = report("needle (request id)", await timed(args.runs, needle))
    queries["needle_24h"] = report(
        "needle, last 24 h", await timed(args.runs, needle_in_a_day), "(the same ids with a [start, end) range)"
    )
    queries["common_term_filter"] = report(
        "common term + level", await timed(args.runs, common), "(newest 50 of `timeout AND level:error` etc.)"
    )
    result = await store.aggregate(histogram_query)
    queries["histogram_24h"] = report(
        "24h histogram by level", await timed(args.runs, histogram), f"({result.total:,} events in 24 h)"
    )
    raw_bytes = info.raw_bytes
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
    return {
        "store": args.store,
        "events": args.events,
        "days": args.days,
        "load_events_per_s": info.load_events_per_s,
        "loaded_in_this_run": info.loaded_in_this_run,
        "load_seconds": info.load_seconds,
        "bytes_per_event": disk_bytes / args.events,
        "raw_bytes_per_event": raw_bytes / args.events,
        "bytes_ratio_to_raw": disk_bytes / raw_bytes,
        "disk_bytes": disk_bytes,
        "bytes_per_event_by_kind": {kind: size / args.events for kind, size in sorted(kinds.items())},
        "histogram_24h_events": result.total,
        "queries": queries,
        "data_dir": str(data_dir),
        "index_prefix": args.index_prefix if args.store == "opensearch" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["tantivy", "opensearch"], default="tantivy")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--data-dir", default="/tmp/mintlog-bench-stores")
    parser.add_argument("--opensearch-url", default="http://127.0.0.1:59200")
    parser.add_argument("--index-prefix", default="mintlogbench", help="OpenSearch: indices {prefix}-bench-*")
    parser.add_argument("--reuse", action="store_true", help="keep the data if the store holds --events events")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
