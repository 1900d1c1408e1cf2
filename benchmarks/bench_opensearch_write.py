"""How fast `OpenSearchLogStore.write` stores events: one write at a time vs several in flight (what
`MINTLOG_INDEXER__CONCURRENT_WRITES` sets), with or without the refresh that makes each write searchable.

    .venv/bin/python -m benchmarks.bench_opensearch_write --events 150000 --concurrency 1
    .venv/bin/python -m benchmarks.bench_opensearch_write --events 150000 --concurrency 4
    .venv/bin/python -m benchmarks.bench_opensearch_write --events 150000 --concurrency 4 --no-refresh

`benchmarks/load.py`'s realistic events, normalized like the pipeline does, in writes of 5,000 (as the
indexer's batches), into a fresh index prefix on the OpenSearch of `scripts/services.sh` (deleted afterwards).
Normalization happens before the clock starts; the events/s are those of the store calls alone. `--no-refresh`
replaces the refresh call by nothing: the rate OpenSearch would reach if writes did not have to be
searchable when they return (the store never does that; it shows what the refresh costs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from benchmarks.load import realistic_event
from mintlog.adapters.logstore.opensearch import OpenSearchLogStore
from mintlog.domain.events import LogEvent, RawBatch
from mintlog.domain.normalize import normalize_batch
from mintlog.launch.bootstrap import build_store
from mintlog.settings import IngestSettings, OpenSearchSettings, Settings, StoreSettings

WRITE_EVENTS = 5_000


def batches(total: int) -> list[list[LogEvent]]:
    rng = random.Random(1)
    run = secrets.token_hex(6)
    prepared: list[list[LogEvent]] = []
    for number in range(max(1, total // WRITE_EVENTS)):
        raw = RawBatch(
            batch_id=f"{run}{number:012x}",
            tenant_id="bench",
            received_at=datetime.now(UTC),
            source="http",
            events=msgspec.json.decode(json.dumps([realistic_event(run, rng) for _ in range(WRITE_EVENTS)])),
        )
        prepared.append(
            normalize_batch(raw, default_service="unknown", default_host="unknown", limits=IngestSettings())
        )
    return prepared


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"oswrite{secrets.token_hex(3)}"
    settings = Settings(
        store=StoreSettings(url=args.opensearch_url, opensearch=OpenSearchSettings(index_prefix=prefix))
    )
    store = build_store(settings)
    assert isinstance(store, OpenSearchLogStore)
    prepared = batches(args.events)
    await store.start()
    client = store._connected()  # pyright: ignore[reportPrivateUsage]
    try:
        if args.no_refresh:

            async def no_refresh(*_args: object, **_kwargs: object) -> None:
                return None

            client.indices.refresh = no_refresh  # type: ignore[method-assign]
        slots = asyncio.Semaphore(args.concurrency)

        async def write(events: list[LogEvent]) -> None:
            async with slots:
                await store.write(events)

        started = time.perf_counter()
        await asyncio.gather(*(write(events) for events in prepared))
        seconds = time.perf_counter() - started
    finally:
        await client.indices.delete(index=f"{prefix}-*")
        await store.close()
    events = sum(len(events) for events in prepared)
    return {
        "events": events,
        "concurrency": args.concurrency,
        "refresh": not args.no_refresh,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--concurrency", type=int, default=1, help="writes in flight at once")
    parser.add_argument("--no-refresh", action="store_true", help="skip the refresh after each write")
    parser.add_argument("--opensearch-url", default="http://127.0.0.1:59200")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
