"""Field discovery and event context over a real (embedded) Tantivy store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import FieldValue, LogEvent
from mintlog.errors import NotFound
from mintlog.roles.api.logs.explore import FieldSummary, TopValue, context_of, summarize_fields

T0 = datetime(2026, 11, 25, 23, 59, 50, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def event(
    event_id: str,
    seconds: float,
    *,
    service: str = "api",
    host: str = "web-1",
    tenant_id: str = "acme",
    fields: dict[str, FieldValue] | None = None,
    trace_id: str | None = None,
) -> LogEvent:
    moment = T0 + timedelta(seconds=seconds)
    return LogEvent(
        id=event_id,
        tenant_id=tenant_id,
        timestamp=moment,
        received_at=moment,
        service=service,
        level="info",
        message=f"message {event_id}",
        host=host,
        trace_id=trace_id,
        fields=fields or {},
    )


def by_name(summaries: list[FieldSummary]) -> dict[str, FieldSummary]:
    return {summary.name: summary for summary in summaries}


def test_fields_report_types_counts_and_top_values() -> None:
    events = [
        event("a", 1, fields={"status": 500, "user": "u1", "tags": ["x", "y"]}),
        event("b", 2, fields={"status": 200, "user": "u1", "retry": True}),
        event("c", 3, service="db", fields={"status": "500", "tags": ["x"]}, trace_id="t1"),
        event("d", 4, fields={"status": None, "latency": 1.5}),
    ]

    summaries = by_name(summarize_fields(events, top=2))

    assert summaries["service"] == FieldSummary("service", "keyword", 4, [TopValue("api", 3), TopValue("db", 1)])
    assert summaries["trace_id"] == FieldSummary("trace_id", "keyword", 1, [TopValue("t1", 1)])
    assert "span_id" not in summaries
    assert summaries["message"].top_values == []
    assert summaries["message"].type == "text"
    assert summaries["timestamp"].type == "date"
    # 500 and "500" are the same text, so they are one value; null counts as absent.
    assert summaries["fields.status"] == FieldSummary(
        "fields.status", "mixed", 3, [TopValue("500", 2), TopValue("200", 1)]
    )
    assert summaries["fields.user"] == FieldSummary("fields.user", "string", 2, [TopValue("u1", 2)])
    assert summaries["fields.tags"] == FieldSummary("fields.tags", "string", 2, [TopValue("x", 2), TopValue("y", 1)])
    assert summaries["fields.retry"].type == "boolean"
    assert summaries["fields.latency"] == FieldSummary("fields.latency", "number", 1, [TopValue("1.5", 1)])
    names = [summary.name for summary in summarize_fields(events, top=0)]
    assert names[-5:] == ["fields.latency", "fields.retry", "fields.status", "fields.tags", "fields.user"]


def test_fields_of_no_events_is_an_empty_list() -> None:
    assert summarize_fields([], top=5) == []


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TantivyLogStore]:
    store = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * 1024 * 1024)
    await store.start()
    yield store
    await store.close()


def ids(events: list[LogEvent]) -> list[str]:
    return [item.id for item in events]


async def test_context_lists_neighbours_of_the_same_service_and_host_across_midnight(store: TantivyLogStore) -> None:
    events = [event(f"e{index:02d}", index * 2) for index in range(12)]  # crosses midnight at e05/e06
    events += [event("other-host", 9, host="web-2"), event("other-service", 11, service="db")]
    events += [event("tie-a", 10), event("tie-z", 10), event("foreign", 10, tenant_id="globex")]
    await store.write(events)

    context = await context_of(store, "acme", "e05", before=3, after=4, same=("service", "host"), now=NOW)

    assert context.event.id == "e05"
    assert ids(context.before) == ["e02", "e03", "e04"]
    assert ids(context.after) == ["tie-a", "tie-z", "e06", "e07"]


async def test_context_without_restriction_includes_every_neighbour(store: TantivyLogStore) -> None:
    await store.write([event("a", 1), event("b", 2, host="web-2"), event("c", 3, service="db")])

    context = await context_of(store, "acme", "b", before=5, after=5, same=(), now=NOW)

    assert (ids(context.before), ids(context.after)) == (["a"], ["c"])


async def test_context_of_an_event_without_a_trace_id_shares_it_with_events_without_one(
    store: TantivyLogStore,
) -> None:
    await store.write([event("a", 1, trace_id="t1"), event("b", 2), event("c", 3), event("d", 4, trace_id="t1")])

    traced = await context_of(store, "acme", "a", before=0, after=5, same=("trace_id",), now=NOW)
    untraced = await context_of(store, "acme", "b", before=5, after=5, same=("trace_id",), now=NOW)

    assert ids(traced.after) == ["d"]
    assert (ids(untraced.before), ids(untraced.after)) == ([], ["c"])


async def test_another_tenants_event_is_not_found(store: TantivyLogStore) -> None:
    await store.write([event("secret", 1, tenant_id="globex")])

    with pytest.raises(NotFound):
        await context_of(store, "acme", "secret", before=1, after=1, same=("service",), now=NOW)
