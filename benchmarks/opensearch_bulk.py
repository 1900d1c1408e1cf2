"""The incumbent: OpenSearch's own `_bulk` ingest of the events `benchmarks/load.py` sends to Mintlog.

Run (OpenSearch from `scripts/services.sh up`; `scripts/services.sh env` prints its URL):

    .venv/bin/python -m benchmarks.opensearch_bulk --url http://127.0.0.1:59200 --seconds 10 --concurrency 8

What a team that just sends its JSON logs to OpenSearch gets, measured like Mintlog's ingest:

- the same request bodies as `benchmarks/load.py` (`{"events": [...]}`, batches of 500 realistic events,
  40 distinct bodies, seeded), each converted before the clock starts into one `_bulk` NDJSON body of the
  same events: one `{"create": {"_index": ...}}` action per event (automatic ids) followed by the event as
  sent; the index is the event's UTC day of `timestamp`, named the way Mintlog's OpenSearch store names its
  daily indices (`{prefix}-{tenant}-YYYY.MM.DD`, `mintlog.adapters.logstore.opensearch_layout`);
- a fresh index template for `{prefix}-*`: 1 shard, 0 replicas, the default refresh interval and
  OpenSearch's default dynamic mapping (strings become `text` plus a `keyword` sub-field, `timestamp` a
  `date`): no mapping tuned by hand;
- `--concurrency` keep-alive connections (aiohttp) POST `/_bulk` back to back for `--seconds`, with
  `filter_path=errors,items.*.error` so the client parses only the failures; failed items are counted;
- then one `_refresh` makes everything searchable and `_count` counts it. `events_per_s` is the events
  counted divided by the time from the first request to the end of that refresh (indexed AND searchable,
  as Mintlog's end-to-end rate); `accepted_events_per_s` is the events the `_bulk` answers accepted per
  second of sending; request p50/p99 are per `_bulk` request;
- bytes on disk per event: the primary store size (`_stats/store`) of the indices after a `_flush`, divided
  by the events counted (background merges may still be running; no force-merge);
- finally the indices and the template are deleted (leftovers of an earlier run with the same prefix are
  deleted before starting).

OpenSearch and this client share the machine's cores, as Mintlog and `benchmarks/load.py` do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import msgspec

from mintlog.adapters.logstore.opensearch_layout import daily_index, validate_index_prefix

__all__ = ["TENANT", "bulk_ndjson", "event_day", "index_template", "measure_bulk"]

TENANT = "bench"
"""The tenant part of the index names (`{prefix}-bench-YYYY.MM.DD`), as `benchmarks/bench_stores.py` uses."""
TEMPLATE_PRIORITY = 250
_NDJSON = {"Content-Type": "application/x-ndjson"}
_JSON = {"Content-Type": "application/json"}
_encoder = msgspec.json.Encoder()


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def event_day(event: Any, fallback: date) -> date:
    """The UTC day of an event's `timestamp` (ISO 8601 text or epoch seconds/ms/µs/ns), else `fallback`."""
    stamp = event.get("timestamp") if isinstance(event, dict) else None
    moment: datetime | None = None
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return fallback
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
        seconds = float(stamp)
        while abs(seconds) >= 1e11:  # milliseconds, microseconds or nanoseconds since the epoch
            seconds /= 1000
        try:
            moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return fallback
    if moment is None:
        return fallback
    return moment.astimezone(UTC).date()


def bulk_ndjson(
    ingest_body: bytes, index_prefix: str, tenant: str = TENANT, *, fallback_day: date | None = None
) -> tuple[bytes, int]:
    """The `_bulk` NDJSON body of the events of one ingest body (`{"events": [...]}`) and their number.

    Per event, in order: `{"create":{"_index":"<prefix>-<tenant>-YYYY.MM.DD"}}` (the event's UTC day;
    `fallback_day`, default today, when it has no readable timestamp) then the event as compact JSON.
    """
    validate_index_prefix(index_prefix)
    decoded = msgspec.json.decode(ingest_body)
    if not isinstance(decoded, dict) or not isinstance(decoded.get("events"), list):
        raise ValueError('an ingest body is {"events": [...]}')
    fallback = fallback_day or datetime.now(UTC).date()
    actions: dict[date, bytes] = {}
    lines: list[bytes] = []
    for event in decoded["events"]:
        day = event_day(event, fallback)
        action = actions.get(day)
        if action is None:
            action = actions[day] = _encoder.encode({"create": {"_index": daily_index(index_prefix, tenant, day)}})
        lines.append(action)
        lines.append(_encoder.encode(event))
    lines.append(b"")
    return b"\n".join(lines), len(decoded["events"])


def index_template(index_prefix: str) -> dict[str, Any]:
    """What a team sets up before sending JSON: 1 shard, 0 replicas, everything else OpenSearch's default."""
    return {
        "index_patterns": [f"{validate_index_prefix(index_prefix)}-*"],
        "priority": TEMPLATE_PRIORITY,
        "template": {"settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}}},
    }


def _template_name(index_prefix: str) -> str:
    return f"{index_prefix}_bulkbench"


@dataclass
class _Tally:
    accepted: int = 0
    errors: int = 0
    requests: int = 0
    latencies: list[float] = field(default_factory=lambda: [])
    statuses: dict[str, int] = field(default_factory=lambda: {})
    first_error: str = ""


async def _call(session: aiohttp.ClientSession, method: str, url: str, *, ok: tuple[int, ...] = (200,)) -> Any:
    async with session.request(method, url, headers=_JSON) as response:
        payload = await response.read()
        if response.status not in ok:
            raise RuntimeError(f"{method} {url}: HTTP {response.status} {payload[:300]!r}")
        return msgspec.json.decode(payload) if payload else None


async def _indices(session: aiohttp.ClientSession, url: str, index_prefix: str) -> list[str]:
    rows = await _call(session, "GET", f"{url}/_cat/indices/{index_prefix}-*?format=json&h=index")
    return sorted(str(row["index"]) for row in rows or [])


async def _delete_indices(session: aiohttp.ClientSession, url: str, index_prefix: str) -> None:
    names = await _indices(session, url, index_prefix)
    for start in range(0, len(names), 50):
        await _call(session, "DELETE", f"{url}/{','.join(names[start : start + 50])}", ok=(200, 404))


async def _sender(
    session: aiohttp.ClientSession, url: str, bodies: list[tuple[bytes, int]], first: int, stop_at: float, tally: _Tally
) -> None:
    index = first % len(bodies)
    endpoint = f"{url}/_bulk?filter_path=errors,items.*.error"
    while time.monotonic() < stop_at:
        body, events = bodies[index]
        index = (index + 1) % len(bodies)
        started = time.perf_counter()
        async with session.post(endpoint, data=body, headers=_NDJSON) as response:
            payload = await response.read()
            status = response.status
        tally.latencies.append(time.perf_counter() - started)
        tally.requests += 1
        tally.statuses[str(status)] = tally.statuses.get(str(status), 0) + 1
        if status != 200:
            tally.errors += events
            tally.first_error = tally.first_error or f"HTTP {status}: {payload[:300]!r}"
            continue
        answer = msgspec.json.decode(payload)
        failed = len(answer.get("items", [])) if answer.get("errors") else 0
        if failed and not tally.first_error:
            tally.first_error = json.dumps(answer["items"][0])[:300]
        tally.errors += failed
        tally.accepted += events - failed


async def measure_bulk(
    url: str, bodies: list[bytes], *, seconds: float, concurrency: int, index_prefix: str = "bulkbench"
) -> dict[str, Any]:
    """`_bulk` the events of the ingest `bodies` into OpenSearch at `url` for `seconds` (see the module doc).

    Returns `events_per_s` (counted after the final refresh ÷ first request to end of refresh),
    `accepted_events_per_s`, `request_p50_ms`, `request_p99_ms`, `events_indexed`, `errors`,
    `bytes_per_event`, plus details (raw and NDJSON bytes per event, timings, statuses, indices).
    """
    url = url.rstrip("/")
    converted = [bulk_ndjson(body, index_prefix) for body in bodies]
    if not converted:
        raise ValueError("no bodies to send")
    raw_bytes_per_event = sum(len(body) for body in bodies) / sum(events for _, events in converted)
    ndjson_bytes_per_event = sum(len(body) for body, _ in converted) / sum(events for _, events in converted)
    pattern = f"{index_prefix}-*"
    template = _template_name(index_prefix)
    tally = _Tally()
    connector = aiohttp.TCPConnector(limit=concurrency + 2)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await _delete_indices(session, url, index_prefix)
        async with session.put(
            f"{url}/_index_template/{template}", data=_encoder.encode(index_template(index_prefix)), headers=_JSON
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"index template: HTTP {response.status} {await response.text()}")
        try:
            started = time.perf_counter()
            stop_at = time.monotonic() + seconds
            await asyncio.gather(
                *(
                    _sender(session, url, converted, worker * len(converted) // concurrency, stop_at, tally)
                    for worker in range(concurrency)
                )
            )
            sent = time.perf_counter()
            await _call(session, "POST", f"{url}/{pattern}/_refresh")
            refreshed = time.perf_counter()
            counted = await _call(session, "GET", f"{url}/{pattern}/_count")
            events_indexed = int(counted["count"])
            await _call(session, "POST", f"{url}/{pattern}/_flush")
            stats = await _call(session, "GET", f"{url}/{pattern}/_stats/store")
            store_bytes = int(stats["_all"]["primaries"]["store"]["size_in_bytes"])
            indices = await _indices(session, url, index_prefix)
        finally:
            await _delete_indices(session, url, index_prefix)
            await _call(session, "DELETE", f"{url}/_index_template/{template}", ok=(200, 404))
    return {
        "events_per_s": events_indexed / (refreshed - started),
        "accepted_events_per_s": tally.accepted / (sent - started),
        "request_p50_ms": _percentile(tally.latencies, 0.5) * 1000,
        "request_p99_ms": _percentile(tally.latencies, 0.99) * 1000,
        "events_indexed": events_indexed,
        "errors": tally.errors,
        "bytes_per_event": store_bytes / events_indexed if events_indexed else float("nan"),
        "events_accepted": tally.accepted,
        "requests": tally.requests,
        "statuses": tally.statuses,
        "first_error": tally.first_error,
        "send_seconds": sent - started,
        "refresh_seconds": refreshed - sent,
        "store_bytes": store_bytes,
        "raw_bytes_per_event": raw_bytes_per_event,
        "ndjson_bytes_per_event": ndjson_bytes_per_event,
        "bytes_ratio_to_raw": store_bytes / events_indexed / raw_bytes_per_event if events_indexed else float("nan"),
        "indices": indices,
        "concurrency": concurrency,
        "seconds": seconds,
    }


def main() -> None:
    from benchmarks.ceiling import realistic_bodies

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:59200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500, help="events per body, as benchmarks/load.py sends")
    parser.add_argument("--distinct-bodies", type=int, default=40)
    parser.add_argument("--index-prefix", default="bulkbench")
    args = parser.parse_args()
    bodies = realistic_bodies(args.batch, args.distinct_bodies)
    result = asyncio.run(
        measure_bulk(
            args.url, bodies, seconds=args.seconds, concurrency=args.concurrency, index_prefix=args.index_prefix
        )
    )
    print(json.dumps({"batch": args.batch, **result}, indent=2))


if __name__ == "__main__":
    main()
