"""The matcher (tail) and the Tantivy query (search) compiled from one query select the same events.

Thirty realistic events are indexed into a real Tantivy index built with the store's own schema and
document encoding; every query of the table runs through both compilers and the two id sets must be equal.
The first queries also carry the ids a person expects, so a bug shared by both compilers cannot pass.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import tantivy

from mintlog.adapters.logstore import tantivy_schema
from mintlog.adapters.logstore.tantivy_schema import MESSAGE_TOKENIZER, encode_document, message_analyzer, to_utc
from mintlog.domain.events import FieldValue, LogEvent
from mintlog.query import parse
from mintlog.query.matcher import to_matcher
from mintlog.query.tantivy import to_tantivy

T0 = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def event(
    number: int,
    service: str,
    level: str,
    host: str,
    message: str,
    fields: dict[str, FieldValue] | None = None,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    source: str = "http",
    timestamp: datetime | None = None,
) -> LogEvent:
    moment = timestamp or T0 + timedelta(minutes=10 * number)
    return LogEvent(
        id=f"e{number:02d}",
        tenant_id="acme",
        timestamp=moment,
        received_at=moment,
        service=service,
        level=level,  # pyright: ignore[reportArgumentType]
        message=message,
        host=host,
        trace_id=trace_id,
        span_id=span_id,
        fields=fields or {},
        source=source,
    )


EVENTS = [
    event(1, "api", "error", "web-1", "Connection reset by peer while calling payments",
          {"status": 500, "latency_ms": 1200, "user_id": "u123", "http.method": "POST"},
          trace_id="t-aaa", span_id="s-1"),
    event(2, "api", "info", "web-1", "GET /v1/orders 200 in 35ms",
          {"status": 200, "latency_ms": 35, "user_id": "u124", "http.method": "GET"}, trace_id="t-bbb"),
    event(3, "api", "warn", "web-2", "Slow request: timeout approaching",
          {"status": "503", "latency_ms": 250, "user_id": "u123"}),
    event(4, "checkout", "error", "web-2", "Timeout contacting payments after 3 retries",
          {"status": 504, "latency_ms": 30000.5, "retries": 3}, trace_id="t-ccc"),
    event(5, "checkout", "info", "web-10", "order placed",
          {"status": 201, "latency_ms": 99.9, "cart.items": [1, 2, 3], "coupon": None}),
    event(6, "payments", "fatal", "db-1", "panic: connection reset", {"status": 500.0, "error.kind": "io"}),
    event(7, "payments", "debug", "db-1", "cache hit ratio=0.93", {"ratio": 0.93, "cached": True}),
    event(8, "auth", "info", "web-1", "user u123 logged in", {"user_id": "u123", "mfa": False}, source="otlp"),
    event(9, "auth", "warn", "web-2", "login failed for user U123", {"user_id": "U123", "attempts": "5"}),
    event(10, "api", "error", "web-1", "CONNECTION RESET", {"status": [500, 502], "tags": ["edge", "eu-west"]}),
    event(11, "api", "info", "web-3", "healthcheck ok"),
    event(12, "worker", "info", "job-7", "processed 1000 jobs", {"count": 1000, "duration_s": 12.5},
          source="syslog"),
    event(13, "worker", "error", "job-7", "job failed: division by zero", {"count": -3, "error.kind": "zero"},
          source="syslog"),
    event(14, "checkout", "warn", "web-10", "Zahlung fehlgeschlagen: Größe überschritten",
          {"status": 422, "locale": "de-DE"}),
    event(15, "search", "info", "web-2", "検索 クエリ 完了", {"hits": 0}),
    event(16, "api", "info", "web-1", "token sha1 " + "a" * 40 + " verified"),
    event(17, "api", "info", "web-1", "blob " + "x" * 300 + " end"),
    event(18, "api", "debug", "web-1", "user-42 requested /health", {"user": "user-42", "status": "200 OK"}),
    event(19, "api", "error", "web-2", "upstream returned 500", {"status": "500", "upstream": "payments:8080"}),
    event(20, "checkout", "info", "web-10", "checkout started", {"amount": 19.99, "currency": "EUR", "big": 1e20}),
    event(21, "checkout", "info", "web-10", "checkout completed",
          {"amount": 20, "currency": "EUR", "amount_str": "20.00"}),
    event(22, "payments", "warn", "db-1", "retrying payment", {"retries": 2, "ratio": float("nan")}, trace_id=""),
    event(23, "ingest", "info", "web-2", "batch accepted", {"size": 0, "empty": "", "neg": -0.5}),
    event(24, "api", "info", "web-1", "Request timed out", {"status": 408, "path": "/v1/logs*"}),
    event(25, "api", "info", "web-1", "connection established", {"status": 101},
          timestamp=datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=UTC)),
    event(26, "auth", "info", "web-1", "session refreshed", {"user_id": "u999", "http.status": 200}, source="otlp",
          timestamp=datetime(2026, 11, 26, 16, 30, tzinfo=timezone(timedelta(hours=2)))),
    event(27, "api", "error", "web-2", "Timeout: connection reset", {"status": 500, "latency_ms": 250.0001}),
    event(28, "api", "info", "web-1", "multi\nline message with timeout", {"note": "a\nb"}),
    event(29, "billing", "error", "web-1", "charge declined", {"status": "5e2", "code": "card_declined"}),
    event(30, "billing", "info", "web-1", "invoice 0500 generated", {"invoice": "0500", "amount": 0.1}),
]  # fmt: skip

# Queries with the ids a person expects (both compilers must return exactly these).
EXPECTED: list[tuple[str, set[str]]] = [
    ("level:error", {"e01", "e04", "e10", "e13", "e19", "e27", "e29"}),
    ("level:error AND service:api", {"e01", "e10", "e19", "e27"}),
    ("timeout", {"e03", "e04", "e27", "e28"}),
    ('"connection reset"', {"e01", "e06", "e10", "e27"}),
    ("fields.status:500", {"e01", "e06", "e10", "e19", "e27"}),
    ("fields.status:[500 TO 599]", {"e01", "e03", "e04", "e06", "e10", "e19", "e27"}),
    ("fields.latency_ms:>250", {"e01", "e04", "e27"}),
    ("service:check*", {"e04", "e05", "e14", "e20", "e21"}),
    ("host:web-? level:warn", {"e03", "e09"}),
    ("_exists_:fields.user_id", {"e01", "e02", "e03", "e08", "e09", "e26"}),
    ("-level:info service:auth", {"e09"}),
    ("timestamp:>now-30m", {"e27", "e28", "e29", "e30"}),
    ('fields.status:"500"', {"e01", "e10", "e19", "e27"}),
    ("fields.status:5e2", {"e01", "e06", "e10", "e19", "e27", "e29"}),
    ("fields.invoice:0500", {"e30"}),
    ("fields.amount_str:20", {"e21"}),
    ("fields.attempts:>=5", {"e09"}),
    ("größe", {"e14"}),
    ("user-42", {"e18"}),
    ("blob " + "x" * 300, set()),
    ("_exists_:trace_id", {"e01", "e02", "e04", "e22"}),
    ("fields.note:a?b", {"e28"}),
    ("level:(ERROR OR fatal) -service:api", {"e04", "e06", "e13", "e29"}),
    ("service:auth OR service:api level:error", {"e01", "e08", "e09", "e10", "e19", "e26", "e27"}),
]

# Every construct of the language, compared between the two compilers only.
MORE_QUERIES = [
    "*",
    "*:*",
    "",
    "service:API",
    "level:ERROR",
    "fields.user_id:u123",
    "fields.user_id:U123",
    "fields.status:{500 TO 504}",
    "fields.status:{500 TO 504]",
    "fields.status:[* TO 201]",
    "fields.status:[* TO *]",
    "fields.count:<0",
    "fields.latency_ms:>=250",
    "fields.latency_ms:<=250",
    "fields.amount:[19.99 TO 20]",
    "fields.amount:0.1",
    "fields.cached:true",
    "fields.mfa:false",
    "fields.http.method:POST",
    "fields.http.status:200",
    "fields.cart.items:2",
    "fields.tags:eu-*",
    "fields.tags:*west",
    'fields.path:"/v1/logs*"',
    "fields.path:/v1/logs\\*",
    "fields.path:/v1/*",
    "fields.upstream:payments\\:8080",
    "fields.neg:<0",
    "fields.neg:[-1 TO -0.5]",
    "fields.neg:{-1 TO -0.5}",
    'fields.empty:""',
    "_exists_:fields.empty",
    "_exists_:fields.coupon",
    "_exists_:fields.ratio",
    "_exists_:fields.http",
    "fields.big:>1e19",
    "fields.big:100000000000000000000",
    "fields.hits:0",
    "fields.size:-0",
    "fields.size:[0 TO 0]",
    "fields.error.kind:io OR fields.error.kind:zero",
    "fields.status:>=500 AND NOT fields.status:[501 TO *]",
    "NOT _exists_:fields.status",
    "trace_id:t-aaa",
    'trace_id:""',
    "span_id:*",
    "_exists_:span_id",
    "_exists_:service",
    "id:e05",
    "id:e0*",
    "source:otlp",
    "source:sys*",
    "host:*-1",
    "host:web-1?",
    "(service:api OR service:checkout) AND level:error",
    "NOT level:info AND host:db-1",
    "+timeout -level:error",
    "timeout OR payments",
    "zahlung",
    "ÜBERSCHRITTEN",
    "検索",
    "a" * 40,
    "blob AND end",
    '"blob end"',
    'message:"line message"',
    "message:TIMEOUT",
    '"Connection   RESET, by"',
    "timestamp:[2026-11-26T10:00:00Z TO 2026-11-26T11:00:00Z}",
    "timestamp:[* TO 2026-11-26T00:00:00Z}",
    "timestamp:<2026-11-26T00:00:00Z",
    "timestamp:>=2026-11-26T14:30:00Z",
    "timestamp:2026-11-26T10:10:00.123456Z",
    "timestamp:{now-2h TO now]",
    "level:warn || level:fatal && host:db-1",
    "NOT (level:info OR level:debug)",
    "-(-level:info)",
    "fields.status:(500 OR 201)",
    "fields.status:(>=500 -504)",
    "fields.latency_ms:(<100 OR >1000)",
    "fields.status:([200 TO 299] OR 500) -fields.status:\\-1",
]


def store_schema() -> tantivy.Schema:
    """The Tantivy store's schema, which has the `field_pairs` field the query compiler needs."""
    return tantivy_schema.build_schema()


def store_document(item: LogEvent) -> str:
    """The store's document for an event, `field_pairs` terms included."""
    return encode_document(item, to_utc(item.timestamp))


class Index:
    def __init__(self, path: Path) -> None:
        self.schema = store_schema()
        self._index = tantivy.Index(self.schema, path=str(path))
        self._index.register_tokenizer(MESSAGE_TOKENIZER, message_analyzer())
        writer = self._index.writer(16_000_000, 1)
        for item in EVENTS:
            writer.add_json(store_document(item))
        writer.commit()
        writer.wait_merging_threads()
        self._index.reload()

    def ids(self, query: tantivy.Query) -> set[str]:
        searcher = self._index.searcher()
        # Ordering by the `id` fast field hands back the ids (the store keeps `id` unstored).
        hits = searcher.search(query, len(EVENTS) + 1, order_by_field="id").hits
        return {str(event_id) for event_id, _address in hits}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index(tmp_path_factory.mktemp("query-equivalence"))


def matcher_ids(query: str) -> set[str]:
    matches = to_matcher(parse(query), NOW)
    return {item.id for item in EVENTS if matches(item)}


def tantivy_ids(index: Index, query: str) -> set[str]:
    return index.ids(to_tantivy(parse(query), index.schema, NOW))


@pytest.mark.parametrize(("query", "expected"), EXPECTED, ids=[query[:40] for query, _ in EXPECTED])
def test_both_compilers_select_the_expected_events(index: Index, query: str, expected: set[str]) -> None:
    assert matcher_ids(query) == expected
    assert tantivy_ids(index, query) == expected


@pytest.mark.parametrize("query", MORE_QUERIES, ids=[query[:40] for query in MORE_QUERIES])
def test_both_compilers_agree(index: Index, query: str) -> None:
    assert matcher_ids(query) == tantivy_ids(index, query)


def test_the_table_covers_every_kind_of_clause() -> None:
    kinds = {type(node).__name__ for query, _ in EXPECTED for node in _walk(parse(query))}
    kinds |= {type(node).__name__ for query in MORE_QUERIES for node in _walk(parse(query))}
    assert kinds >= {
        "MatchAll", "MatchNone", "Text", "Term", "Wildcard", "NumberRange", "TimeRange", "Exists", "And", "Or", "Not",
    }  # fmt: skip
    assert len(EXPECTED) + len(MORE_QUERIES) >= 40


def test_random_combinations_agree(index: Index) -> None:
    atoms = [query for query, _ in EXPECTED[:12]] + [
        "fields.status:>=500",
        "_exists_:trace_id",
        "host:web-*",
        "fields.user_id:u123",
        "reset",
        "timestamp:<now-3h",
        "fields.amount:[0 TO 20}",
    ]
    generator = random.Random(20261126)
    for _ in range(150):
        query = _random_query(generator, atoms, depth=3)
        assert matcher_ids(query) == tantivy_ids(index, query), query


def _random_query(generator: random.Random, atoms: list[str], depth: int) -> str:
    if depth == 0 or generator.random() < 0.3:
        atom = generator.choice(atoms)
        return f"NOT ({atom})" if generator.random() < 0.2 else f"({atom})"
    operator = generator.choice([" AND ", " OR ", " "])
    parts = [_random_query(generator, atoms, depth - 1) for _ in range(generator.randint(2, 3))]
    return "(" + operator.join(parts) + ")"


def _walk(node: object) -> Iterator[object]:
    yield node
    for child in getattr(node, "clauses", ()):
        yield from _walk(child)
    clause = getattr(node, "clause", None)
    if clause is not None:
        yield from _walk(clause)
