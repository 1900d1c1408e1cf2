"""A realistic, reproducible log generator for benchmarks.

Cardinalities modelled on a mid-size platform (numbers per 10 million events):

- 40 services with a skewed (Zipf-like) share of the volume; each runs on its own 4-12 of 300 hosts;
- levels: debug 10 %, info 74.5 %, warn 10 %, error 5 %, fatal 0.5 %;
- requests of 1-8 events sharing a 16-hex-digit `fields.request_id` (about 2.2 million distinct ids);
- 60 message templates (HTTP access lines, DB, cache, auth, queue, errors with exception names) whose
  variable parts (paths, user ids, durations, status codes, peers) give many distinct messages;
- `fields`: request_id, status, duration_ms (float), user_id (100,000 distinct), path (~200), plus a few
  template-specific keys (attempt, queue, table, ...);
- timestamps increase through the generated span with sub-second jitter, as real shippers send them.

`events(...)` yields ingest-shaped dicts (the NDJSON a client would send); `log_event(...)` turns one into
the normalized `LogEvent` a store receives, so stores can be loaded without the HTTP path.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from mintlog.domain.events import LogEvent

__all__ = ["REQUEST_ID_FIELD", "events", "log_event"]

REQUEST_ID_FIELD = "request_id"
_SERVICES = [
    "api-gateway", "checkout", "payments", "auth", "search", "catalog", "cart", "orders", "inventory",
    "shipping", "notifications", "email", "sms", "billing", "invoices", "users", "profiles", "sessions",
    "recommendations", "reviews", "pricing", "promotions", "tax", "fraud", "ledger", "reports", "exports",
    "imports", "scheduler", "worker", "media", "thumbnails", "uploads", "webhooks", "audit", "admin",
    "feature-flags", "config", "metrics-proxy", "edge",
]  # fmt: skip
_PATHS = [
    f"/api/v{version}/{resource}{suffix}"
    for version in (1, 2)
    for resource in (
        "orders", "users", "carts", "payments", "products", "sessions", "invoices", "search", "reviews",
        "shipments",
    )
    for suffix in ("", "/{id}", "/{id}/items", "/{id}/status", "/bulk", "/export", "/import", "/history",
                   "/summary", "/events")
]  # fmt: skip
_PEERS = [f"10.0.{a}.{b}" for a in range(4) for b in range(1, 60)]
_EXCEPTIONS = [
    "TimeoutError", "ConnectionResetError", "KeyError", "ValueError", "IntegrityError", "OperationalError",
    "PermissionDenied", "RateLimitExceeded", "CircuitOpen", "DeadlineExceeded",
]  # fmt: skip
_TABLES = ["orders", "users", "payments", "sessions", "inventory", "ledger_entries", "audit_log"]
_QUEUES = ["emails", "webhooks", "exports", "thumbnails", "reindex"]

# (level, template); `{...}` parts are filled per event.
_TEMPLATES: list[tuple[str, str]] = [
    ("info", "{method} {path} {status} in {duration}ms"),
    ("info", "{method} {path} {status} in {duration}ms"),
    ("info", "{method} {path} {status} in {duration}ms"),
    ("info", "{method} {path} {status} in {duration}ms bytes={bytes}"),
    ("info", "user {user} logged in from {peer}"),
    ("info", "user {user} logged out"),
    ("info", "session {token} refreshed for user {user}"),
    ("info", "cache hit for key {table}:{id}"),
    ("info", "cache miss for key {table}:{id}, loading from database"),
    ("info", "query on {table} returned {rows} rows in {duration}ms"),
    ("info", "enqueued job {token} on queue {queue}"),
    ("info", "job {token} on queue {queue} finished in {duration}ms"),
    ("info", "order {id} created with {rows} items total {amount} EUR"),
    ("info", "payment {token} authorized for order {id}"),
    ("info", "shipment {id} handed to carrier"),
    ("info", "email {token} delivered to user {user}"),
    ("info", "webhook {token} delivered to {peer} with status {status}"),
    ("info", "feature flag {table} evaluated to true for user {user}"),
    ("info", "config reloaded, {rows} keys changed"),
    ("info", "health check passed in {duration}ms"),
    ("info", "connection pool size {rows} idle {bytes}"),
    ("info", "started processing batch {token} of {rows} records"),
    ("info", "completed batch {token}: {rows} records in {duration}ms"),
    ("info", "rendered thumbnail {token} {rows}x{rows}"),
    ("info", "search for {table} returned {rows} hits in {duration}ms"),
    ("info", "invoice {id} generated for user {user}"),
    ("info", "price recomputed for product {id}"),
    ("info", "review {id} published"),
    ("info", "audit entry written for user {user} action {method}"),
    ("info", "exported {rows} rows of {table} to storage"),
    ("debug", "parsed request headers count={rows}"),
    ("debug", "acquired lock {table}:{id} after {duration}ms"),
    ("debug", "released lock {table}:{id}"),
    ("debug", "retrying {method} {path} attempt {attempt}"),
    ("debug", "serialized response of {bytes} bytes"),
    ("debug", "span {token} ended after {duration}ms"),
    ("warn", "slow query on {table} took {duration}ms"),
    ("warn", "{method} {path} {status} in {duration}ms exceeded latency budget"),
    ("warn", "retrying call to {peer} after connection reset attempt {attempt}"),
    ("warn", "rate limit at 90% for user {user}"),
    ("warn", "queue {queue} depth {rows} above threshold"),
    ("warn", "certificate for {peer} expires in {rows} days"),
    ("warn", "deprecated endpoint {path} called by user {user}"),
    ("warn", "cache eviction storm on {table}: {rows} keys"),
    ("warn", "payment {token} requires additional verification"),
    ("error", "{method} {path} {status} in {duration}ms: upstream timeout"),
    ("error", "connection timeout contacting {peer} after {duration}ms"),
    ("error", "connection reset by peer {peer} during {method} {path}"),
    ("error", "unhandled {exception} in handler {path}"),
    ("error", "{exception}: duplicate key value violates unique constraint on {table}"),
    ("error", "payment {token} declined by provider: insufficient funds"),
    ("error", "failed to deliver webhook {token} to {peer}: status {status}"),
    ("error", "job {token} on queue {queue} failed: {exception}"),
    ("error", "database {exception} on {table}: too many connections"),
    ("error", "circuit breaker open for {peer}"),
    ("error", "timeout waiting for lock {table}:{id} after {duration}ms"),
    ("fatal", "out of memory while processing batch {token}"),
    ("fatal", "cannot connect to database after {attempt} attempts, exiting"),
    ("fatal", "configuration invalid: missing key {table}"),
    ("fatal", "panic: {exception} in worker loop"),
]
_LEVEL_WEIGHTS = {"debug": 10.0, "info": 74.5, "warn": 10.0, "error": 5.0, "fatal": 0.5}
_METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"]
_STATUSES = {
    "info": [200, 200, 200, 201, 204, 304],
    "debug": [200],
    "warn": [200, 404, 429],
    "error": [500, 502, 503, 504],
    "fatal": [500],
}


class _Choices:
    """Weighted choices prepared once."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.service_weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(_SERVICES))]
        self.hosts_of = {
            service: [f"{service[:6]}-{rng.randrange(300):03d}" for _ in range(rng.randrange(4, 13))]
            for service in _SERVICES
        }
        by_level: dict[str, list[str]] = {}
        for level, template in _TEMPLATES:
            by_level.setdefault(level, []).append(template)
        self.templates_of = by_level
        self.levels = list(_LEVEL_WEIGHTS)
        self.level_weights = list(_LEVEL_WEIGHTS.values())


def _fill(template: str, rng: random.Random, level: str, user: str, path: str) -> tuple[str, dict[str, Any]]:
    status = rng.choice(_STATUSES[level])
    duration = round(rng.lognormvariate(3.0, 1.0), 2)
    parts = {
        "method": rng.choice(_METHODS),
        "path": path,
        "status": status,
        "duration": duration,
        "bytes": rng.randrange(100, 2_000_000),
        "user": user,
        "peer": rng.choice(_PEERS),
        "token": f"{rng.getrandbits(48):012x}",
        "table": rng.choice(_TABLES),
        "id": rng.randrange(1, 5_000_000),
        "rows": rng.randrange(0, 500),
        "queue": rng.choice(_QUEUES),
        "amount": f"{rng.randrange(1, 100_000) / 100:.2f}",
        "attempt": rng.randrange(1, 6),
        "exception": rng.choice(_EXCEPTIONS),
    }
    fields: dict[str, Any] = {"status": status, "duration_ms": duration, "path": path}
    for extra in ("attempt", "queue", "table"):
        if "{" + extra + "}" in template:
            fields[extra] = parts[extra]
    return template.format(**parts), fields


def events(count: int, *, start: datetime, span: timedelta, seed: int = 1) -> Iterator[dict[str, Any]]:
    """`count` ingest-shaped events, timestamps increasing from `start` over `span` (see the module docstring)."""
    rng = random.Random(seed)
    choices = _Choices(rng)
    step = span / max(count, 1)
    produced = 0
    while produced < count:
        service = rng.choices(_SERVICES, choices.service_weights)[0]
        host = rng.choice(choices.hosts_of[service])
        request_id = f"{rng.getrandbits(64):016x}"
        user = f"u{rng.randrange(100_000)}"
        path = rng.choice(_PATHS)
        for _ in range(min(rng.randrange(1, 9), count - produced)):
            level = rng.choices(choices.levels, choices.level_weights)[0]
            template = rng.choice(choices.templates_of[level])
            message, fields = _fill(template, rng, level, user, path)
            moment = start + step * produced + timedelta(milliseconds=rng.randrange(0, 800))
            yield {
                "timestamp": moment.isoformat().replace("+00:00", "Z"),
                "service": service,
                "host": host,
                "level": level,
                "message": message,
                "fields": {REQUEST_ID_FIELD: request_id, "user_id": user, **fields},
            }
            produced += 1


def log_event(raw: dict[str, Any], *, tenant_id: str, event_id: str) -> LogEvent:
    """The normalized event the pipeline would produce from `raw` (ingest-shaped, from `events`)."""
    timestamp = datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00")).astimezone(UTC)
    return LogEvent(
        id=event_id,
        tenant_id=tenant_id,
        timestamp=timestamp,
        received_at=timestamp,
        service=raw["service"],
        level=raw["level"],
        message=raw["message"],
        host=raw["host"],
        fields=raw["fields"],
    )
