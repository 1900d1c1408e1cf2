"""Microbenchmark of the query language: parsing, compiling, and the tail matcher.

Run: `.venv/bin/python benchmarks/bench_query.py [--events 200000] [--repeat 5]`

Prints the best-of-`repeat` time to parse each query (µs), to compile it for each engine (µs), and the
matcher's throughput over `events` realistic events (events per second, one core). Best-of is used
because the question is what the code costs, not how noisy the machine is.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mintlog.adapters.logstore.tantivy_schema import build_schema
from mintlog.domain.events import LogEvent
from mintlog.query import parse
from mintlog.query.matcher import to_matcher
from mintlog.query.opensearch import to_opensearch
from mintlog.query.tantivy import to_tantivy

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
QUERIES = [
    "level:error AND service:api",
    'level:error AND service:api AND "connection reset" fields.status:>=500',
    "timeout",
    '"connection reset"',
    "fields.status:[500 TO 599]",
    "fields.latency_ms:>250 AND timestamp:>now-1h",
    "service:check* AND NOT host:web-?",
    "(level:error OR level:fatal) AND _exists_:fields.user_id -service:auth",
]
_SERVICES = ["api", "checkout", "payments", "auth", "worker"]
_LEVELS = ["debug", "info", "info", "info", "warn", "error"]
_MESSAGES = [
    "GET /v1/orders 200 in 35ms",
    "Connection reset by peer while calling payments",
    "Timeout contacting payments after 3 retries",
    "user u123 logged in",
    "cache hit ratio=0.93",
]


def best_of(repeat: int, function: Callable[[], object], loops: int) -> float:
    """The best time of one call of `function`, in seconds, over `repeat` runs of `loops` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(loops):
            function()
        best = min(best, (time.perf_counter() - started) / loops)
    return best


def make_events(count: int) -> list[LogEvent]:
    generator = random.Random(1)
    return [
        LogEvent(
            id=f"e{number}",
            tenant_id="acme",
            timestamp=NOW - timedelta(seconds=generator.randint(0, 7200)),
            received_at=NOW,
            service=generator.choice(_SERVICES),
            level=generator.choice(_LEVELS),  # pyright: ignore[reportArgumentType]
            message=generator.choice(_MESSAGES),
            host=f"web-{generator.randint(1, 12)}",
            fields={"status": generator.choice([200, 201, 404, 500, 503]), "latency_ms": generator.random() * 500}
            | ({"user_id": f"u{generator.randint(1, 999)}"} if generator.random() < 0.5 else {}),
        )
        for number in range(count)
    ]


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--events", type=int, default=200_000)
    arguments.add_argument("--repeat", type=int, default=5)
    options = arguments.parse_args()
    schema = build_schema()
    events = make_events(options.events)
    print(f"{'query':72} {'parse µs':>9} {'os µs':>7} {'tv µs':>7} {'match ev/s':>12}")
    for query in QUERIES:
        node = parse(query)
        parse_seconds = best_of(options.repeat, lambda query=query: parse(query), 2000)
        opensearch_seconds = best_of(options.repeat, lambda node=node: to_opensearch(node, NOW), 2000)
        if "fields." in query:  # needs the field_pairs field the store does not have yet
            tantivy_text = "-"
        else:
            tantivy_seconds = best_of(options.repeat, lambda node=node: to_tantivy(node, schema, NOW), 2000)
            tantivy_text = f"{tantivy_seconds * 1e6:7.1f}"
        matches = to_matcher(node, NOW)
        match_seconds = best_of(options.repeat, lambda matches=matches: [matches(item) for item in events], 1)
        print(
            f"{query:72} {parse_seconds * 1e6:9.1f} {opensearch_seconds * 1e6:7.1f} {tantivy_text:>7}"
            f" {options.events / match_seconds:12,.0f}"
        )


if __name__ == "__main__":
    main()
