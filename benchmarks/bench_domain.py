"""Microbenchmark of the per-event hot path: ingest validation and pipeline normalization.

Run: `.venv/bin/python benchmarks/bench_domain.py [--events 20000] [--repeat 7]`

For each realistic event shape it prints the best-of-`repeat` time per event, in microseconds, of
`validate_events` (ingest) and `normalize_batch` (pipeline) over a batch of `events` copies, and of the
MessagePack encoding of the resulting `ParsedBatch` for context. Best-of is used because the question is
what the code costs, not how noisy the machine is.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from mintlog.domain.events import ParsedBatch, RawBatch
from mintlog.domain.normalize import normalize_batch
from mintlog.domain.streams import encode_bus_message
from mintlog.domain.validation import validate_events
from mintlog.settings import IngestSettings

SHAPES: dict[str, dict[str, Any]] = {
    "typical": {
        "service": "api",
        "level": "info",
        "message": "GET /users 200 12ms",
        "timestamp": "2026-11-26T10:00:00.123Z",
        "fields": {"user_id": "u123", "status": 200},
    },
    "extra top-level keys": {
        "service": "checkout",
        "level": "WARN",
        "message": "payment retried",
        "timestamp": "2026-11-26T10:00:00.123456+01:00",
        "host": "web-7",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "request_id": "req-9f8e7d",
        "attempt": 2,
        "fields": {"order_id": "o-123", "amount": 19.99, "currency": "EUR"},
    },
    "nested fields": {
        "service": "api",
        "level": "error",
        "message": "upstream timeout",
        "timestamp": 1_764_151_200_123,
        "fields": {
            "http": {"method": "POST", "path": "/v1/orders", "status": 504, "duration_ms": 30001},
            "user": {"id": "u123", "roles": ["admin", "billing"]},
            "upstream": {"host": "payments.internal", "port": 8443},
        },
    },
    "pino (aliases, epoch ms)": {
        "level": 30,
        "time": 1_764_151_200_123,
        "pid": 4242,
        "hostname": "node-3",
        "msg": "request completed",
        "req": {"id": 17, "method": "GET", "url": "/health"},
        "responseTime": 3,
    },
    "JSON in message": {
        "service": "worker",
        "log": '{"level":"error","msg":"job failed","job":{"id":"j-1","attempt":3},"error":"timeout"}\n',
        "timestamp": "2026-11-26T10:00:00Z",
    },
    "logfmt in message": {
        "service": "router",
        "message": 'level=info msg="route matched" method=GET path=/users status=200 duration=1.2ms',
        "ts": "2026-11-26T10:00:00.123Z",
    },
}


def best_of(repeat: int, events: int, action: Callable[[], object]) -> float:
    """The fastest of `repeat` runs of `action` over a batch, in seconds per event."""
    timings: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings) / events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000, help="events per batch")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement; the fastest counts")
    options = parser.parse_args()
    limits = IngestSettings()
    received_at = datetime.now(UTC)

    print(f"{'event shape':<28}{'validate µs':>12}{'normalize µs':>14}{'encode µs':>11}{'events/s (v+n)':>16}")
    for name, shape in SHAPES.items():
        events: list[object] = [copy.deepcopy(shape) for _ in range(options.events)]
        result = validate_events(events, limits)
        assert not result.rejections, result.rejections[:1]
        batch = RawBatch(
            batch_id="0193a1b2c3d4",
            tenant_id="acme",
            received_at=received_at,
            source="http",
            events=result.events,
        )
        parsed = normalize_batch(batch, default_service="unknown", default_host="unknown", limits=limits)
        message = ParsedBatch(batch_id=batch.batch_id, tenant_id="acme", events=parsed)

        per_event = options.repeat, options.events
        validate = best_of(*per_event, partial(validate_events, events, limits))
        normalize = best_of(
            *per_event,
            partial(normalize_batch, batch, default_service="unknown", default_host="unknown", limits=limits),
        )
        encode = best_of(*per_event, partial(encode_bus_message, message))
        rate = 1 / (validate + normalize)
        print(f"{name:<28}{validate * 1e6:>12.2f}{normalize * 1e6:>14.2f}{encode * 1e6:>11.2f}{rate:>16,.0f}")


if __name__ == "__main__":
    main()
