"""The ceiling: how fast one Python thread can merely decode the ingest payloads Mintlog receives.

Run:

    .venv/bin/python -m benchmarks.ceiling --seconds 5

It builds the request bodies `benchmarks/load.py` sends (`{"events": [...]}` JSON, batches of `--batch`
realistic events, `--distinct-bodies` of them, seeded) and decodes them round-robin with
`msgspec.json.decode` for `--seconds` in this one process and thread: no HTTP, no validation, no
normalization, no bus, no index. Nothing Mintlog does per event can be cheaper than turning its JSON into
Python objects once, so events/s here is the upper bound for one core, and Mintlog's end-to-end rate is
quoted as a fraction of it. It also decodes the same bodies into a `msgspec.Struct` of the event's shape
(the typed ceiling: fixed keys become attributes, no dict per event) and prints both as JSON.

The decoded objects are dropped right away; the cyclic garbage collector keeps its default settings.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = [
    "TypedBody",
    "TypedEvent",
    "measure_decode",
    "measure_decode_typed",
    "realistic_bodies",
]


class TypedEvent(msgspec.Struct):
    """One event of `benchmarks/load.py`'s shape; `fields` stays a dict (its keys vary per client)."""

    timestamp: str | None = None
    service: str | None = None
    host: str | None = None
    level: str | None = None
    message: str | None = None
    trace_id: str | None = None
    fields: dict[str, Any] = {}


class TypedBody(msgspec.Struct):
    """`{"events": [...]}`."""

    events: list[TypedEvent]


_typed_decoder = msgspec.json.Decoder(TypedBody)


def _events_in(decoded: object, events_per_body: int) -> int:
    """Events in one decoded body: the length of its `events` list, else `events_per_body`."""
    if isinstance(decoded, TypedBody):
        return len(decoded.events)
    if isinstance(decoded, dict):
        listed = decoded.get("events")
        if isinstance(listed, list):
            return len(listed)
    if isinstance(decoded, list):
        return len(decoded)
    return events_per_body


def _measure(
    decode: Callable[[bytes], object], bodies: list[bytes], events_per_body: int, seconds: float
) -> dict[str, Any]:
    """Decode `bodies` round-robin with `decode` for `seconds` (at least one body); count events and bytes.

    Each body's event count is taken from one decode before the clock starts, so the timed loop does
    only the decoding.
    """
    if not bodies:
        raise ValueError("no bodies to decode")
    counts = [_events_in(decode(body), events_per_body) for body in bodies]
    sizes = [len(body) for body in bodies]
    total = len(bodies)
    decoded_bodies = 0
    events = 0
    decoded_bytes = 0
    index = 0
    clock = time.perf_counter
    started = clock()
    deadline = started + seconds
    while True:
        decode(bodies[index])
        events += counts[index]
        decoded_bytes += sizes[index]
        decoded_bodies += 1
        index = index + 1 if index + 1 < total else 0
        if clock() >= deadline:
            break
    elapsed = clock() - started
    return {
        "events_per_s": events / elapsed,
        "mib_per_s": decoded_bytes / elapsed / 2**20,
        "bodies": decoded_bodies,
        "seconds": elapsed,
        "events": events,
        "bytes_per_event": decoded_bytes / events if events else 0.0,
        "us_per_event": elapsed / events * 1e6 if events else 0.0,
    }


def measure_decode(bodies: list[bytes], events_per_body: int, seconds: float) -> dict[str, Any]:
    """`msgspec.json.decode` of `bodies` round-robin for `seconds`, in this thread: events/s and MiB/s.

    Events are counted from each body's `events` list (`events_per_body` only for a body without one).
    Returns `events_per_s`, `mib_per_s`, `bodies` (decoded), `seconds` (measured), plus `events`,
    `bytes_per_event` and `us_per_event`.
    """
    return _measure(msgspec.json.decode, bodies, events_per_body, seconds)


def measure_decode_typed(bodies: list[bytes], events_per_body: int, seconds: float) -> dict[str, Any]:
    """Like `measure_decode`, decoding into `TypedBody` (a `msgspec.Struct` per event): the typed ceiling."""
    return _measure(_typed_decoder.decode, bodies, events_per_body, seconds)


def realistic_bodies(batch: int = 500, count: int = 40, seed: int = 42, run_id: str = "0123456789ab") -> list[bytes]:
    """`count` ingest bodies of `batch` events each, built the way `benchmarks/load.py` builds its bodies.

    `run_id` (`fields.run`) defaults to 12 hex digits, the length of `load.py`'s run ids, so the bytes per
    event match.
    """
    from benchmarks.load import realistic_event

    rng = random.Random(seed)
    return [json.dumps({"events": [realistic_event(run_id, rng) for _ in range(batch)]}).encode() for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measure (plain, then typed)")
    parser.add_argument("--batch", type=int, default=500, help="events per body, as benchmarks/load.py sends")
    parser.add_argument("--distinct-bodies", type=int, default=40)
    parser.add_argument("--no-typed", action="store_true", help="skip the typed (msgspec.Struct) measure")
    args = parser.parse_args()
    bodies = realistic_bodies(args.batch, args.distinct_bodies)
    result: dict[str, Any] = {
        "batch": args.batch,
        "distinct_bodies": len(bodies),
        "raw_bytes_per_event": sum(len(body) for body in bodies) / (len(bodies) * args.batch),
        "decode": measure_decode(bodies, args.batch, args.seconds),
    }
    if not args.no_typed:
        result["decode_typed"] = measure_decode_typed(bodies, args.batch, args.seconds)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
