"""The `LogStore` contract, run against every adapter (see `conftest.STORE_FACTORIES`).

Each test starts from an empty store and asserts what a user of the search API would notice: the events
that come back, their order and the reported total.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
import pytest

from mintlog.domain.events import FieldValue, Level, LogEvent
from mintlog.ports.logstore import LogStore, SearchAfter, SearchPage, SearchQuery
from mintlog.query import Node, QuerySyntaxError, all_of, any_of, parse
from mintlog.query.ast import MatchNone
from mintlog.query.filters import equals
from mintlog.query.matcher import to_matcher
from tests.contract.conftest import OpenStore

DAY1 = datetime(2024, 3, 9, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
ONE_US = timedelta(microseconds=1)


def make_event(
    event_id: str,
    *,
    tenant_id: str = "acme",
    timestamp: datetime = DAY1 + timedelta(hours=12),
    service: str = "checkout",
    level: Level = "info",
    host: str = "web-1",
    message: str = "request served",
    fields: dict[str, FieldValue] | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> LogEvent:
    return LogEvent(
        id=event_id,
        tenant_id=tenant_id,
        timestamp=timestamp,
        received_at=timestamp + timedelta(milliseconds=3),
        service=service,
        level=level,
        message=message,
        host=host,
        trace_id=trace_id,
        span_id=span_id,
        fields=fields or {},
    )


def newest_first(events: list[LogEvent]) -> list[LogEvent]:
    return sorted(events, key=lambda event: (event.timestamp, event.id), reverse=True)


def ids(page: SearchPage) -> list[str]:
    return [event.id for event in page.events]


async def search_all(store: LogStore, tenant_id: str = "acme", query: str = "", **options: Any) -> SearchPage:
    """Every match of `query` (in the query language) for `tenant_id`."""
    return await store.search(SearchQuery(tenant_id=tenant_id, node=parse(query), size=1000, **options))


# --- writing and reading back ------------------------------------------------------------------------


async def test_written_events_come_back_equal(store: LogStore) -> None:
    events = [
        make_event(
            "evt-1",
            timestamp=datetime(2024, 3, 9, 23, 59, 59, 999_999, tzinfo=UTC),
            message="payment declined: card expired",
            fields={
                "user_id": "u-42",
                "status": 402,
                "duration_ms": 12.5,
                "retry": False,
                "tags": ["billing", 7, None, True],
                "note": None,
                "http.method": "POST",
            },
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
            span_id="00f067aa0ba902b7",
        ),
        make_event("evt-2", timestamp=datetime(2024, 3, 10, 0, 0, 0, 1, tzinfo=UTC), level="error"),
        msgspec.structs.replace(make_event("evt-3", fields={"ratio": 1.0, "big": 2**63 - 1}), source="otlp"),
    ]

    await store.write(events)
    page = await search_all(store)

    assert page.events == newest_first(events)
    assert page.total == 3
    assert not page.total_is_lower_bound


async def test_an_empty_write_is_a_no_op(store: LogStore) -> None:
    await store.write([])

    assert (await search_all(store)).total == 0


async def test_one_write_may_mix_tenants_and_days(store: LogStore) -> None:
    events = [
        make_event(f"e-{tenant}-{day}", tenant_id=tenant, timestamp=start + timedelta(hours=3))
        for tenant, (day, start) in itertools.product(("acme", "globex"), enumerate((DAY1, DAY2, DAY3)))
    ]

    await store.write(events)

    for tenant in ("acme", "globex"):
        page = await search_all(store, tenant)
        assert page.events == newest_first([event for event in events if event.tenant_id == tenant])


async def test_rewriting_the_same_ids_keeps_one_copy(store: LogStore) -> None:
    batch = [make_event(f"evt-{index}", timestamp=DAY1 + timedelta(minutes=index)) for index in range(20)]

    await store.write(batch)
    await store.write(batch)
    await store.write(batch[5:10] + batch[5:10])  # duplicates inside one call too
    extra = make_event("evt-new", timestamp=DAY1 + timedelta(hours=5))
    await store.write([*batch[:3], extra])

    page = await search_all(store)
    assert page.total == 21
    assert sorted(ids(page)) == sorted([event.id for event in batch] + ["evt-new"])


async def test_concurrent_writes_of_overlapping_batches_keep_one_copy(store: LogStore) -> None:
    events = [make_event(f"evt-{index:03d}", timestamp=DAY1 + timedelta(seconds=index)) for index in range(60)]

    await asyncio.gather(*(store.write(events[start : start + 30]) for start in (0, 10, 20, 30, 0, 30)))

    page = await search_all(store)
    assert page.total == 60
    assert page.events == newest_first(events)


async def test_search_sees_every_write_that_returned(store: LogStore) -> None:
    for round_number in range(5):
        await store.write([make_event(f"evt-{round_number}", timestamp=DAY1 + timedelta(minutes=round_number))])
        assert (await search_all(store)).total == round_number + 1


async def test_tenants_never_see_each_other_even_with_the_same_ids(store: LogStore) -> None:
    acme = [make_event(f"evt-{index}", tenant_id="acme", message="alpha report") for index in range(3)]
    globex = [make_event(f"evt-{index}", tenant_id="globex", message="beta report") for index in range(3)]

    await store.write(acme)
    await store.write(globex)

    acme_page = await search_all(store, "acme")
    globex_page = await search_all(store, "globex")
    assert acme_page.events == newest_first(acme)
    assert globex_page.events == newest_first(globex)
    assert (await search_all(store, "globex", "alpha")).total == 0
    assert (await search_all(store, "initech")).total == 0


async def test_an_unknown_tenant_gets_an_empty_page(store: LogStore) -> None:
    page = await search_all(store, "nobody")

    assert page.events == []
    assert page.total == 0


# --- filters -----------------------------------------------------------------------------------------


def _filter_dataset() -> list[LogEvent]:
    services = ("checkout", "search", "auth")
    levels: tuple[Level, ...] = ("info", "warn", "error")
    hosts = ("web-1", "web-2")
    events: list[LogEvent] = []
    for index in range(36):
        events.append(
            make_event(
                f"evt-{index:02d}",
                timestamp=DAY1 + timedelta(minutes=index),
                service=services[index % 3],
                level=levels[(index // 3) % 3],
                host=hosts[(index // 9) % 2],
                fields={
                    "user_id": f"u{index % 4}",
                    "status": (200, 404, 500)[index % 3 if index % 2 else (index + 1) % 3],
                    "cached": index % 5 == 0,
                    "region": ["eu", "us"] if index % 7 == 0 else "eu",
                    "seen_at": f"2024-03-09T1{index % 3}:00:00Z",
                    "client_ip": f"10.0.0.{index % 5}",
                },
            )
        )
    return events


def _field_text(value: FieldValue) -> list[str]:
    if isinstance(value, list):
        return [text for item in value for text in _field_text(item)]
    if isinstance(value, str):
        return [value]
    return [msgspec.json.encode(value).decode()]


@dataclasses.dataclass(frozen=True)
class Filters:
    """Structured filters as the search API takes them: values of one filter are alternatives."""

    levels: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()

    def node(self) -> Node:
        """The query node the search API builds of these filters."""
        clauses: list[Node] = []
        for field, values in (("level", self.levels), ("service", self.services), ("host", self.hosts)):
            if values:
                clauses.append(any_of([equals(field, value) for value in values]))
        clauses.extend(equals(f"fields.{key}", value) if key else MatchNone() for key, value in self.fields)
        return all_of(clauses)


def _matches(event: LogEvent, filters: Filters) -> bool:
    return (
        (not filters.levels or event.level in [level.lower() for level in filters.levels])
        and (not filters.services or event.service in filters.services)
        and (not filters.hosts or event.host in filters.hosts)
        and all(key in event.fields and value in _field_text(event.fields[key]) for key, value in filters.fields)
    )


FILTER_CASES = {
    "one level": Filters(levels=("error",)),
    "two levels are alternatives": Filters(levels=("error", "warn")),
    "level is lower-cased": Filters(levels=("ERROR",)),
    "one service": Filters(services=("search",)),
    "two services": Filters(services=("search", "auth")),
    "service is exact": Filters(services=("Search",)),
    "one host": Filters(hosts=("web-2",)),
    "string field": Filters(fields=(("user_id", "u2"),)),
    "string field is exact": Filters(fields=(("user_id", "U2"),)),
    "number field": Filters(fields=(("status", "500"),)),
    "boolean field": Filters(fields=(("cached", "true"),)),
    "list field matches any item": Filters(fields=(("region", "us"),)),
    "timestamp-like string field": Filters(fields=(("seen_at", "2024-03-09T11:00:00Z"),)),
    "address-like string field": Filters(fields=(("client_ip", "10.0.0.3"),)),
    "two fields all apply": Filters(fields=(("user_id", "u2"), ("status", "500"))),
    "missing field": Filters(fields=(("no_such_field", "x"),)),
    "empty field name": Filters(fields=(("", "x"),)),
    "every filter at once": Filters(
        levels=("error", "warn"),
        services=("checkout", "search"),
        hosts=("web-1",),
        fields=(("status", "500"),),
    ),
}


@pytest.mark.parametrize("filters", list(FILTER_CASES.values()), ids=list(FILTER_CASES))
async def test_filters_match_exactly(store: LogStore, filters: Filters) -> None:
    events = _filter_dataset()
    await store.write(events)

    page = await store.search(SearchQuery("acme", filters.node(), size=1000))

    expected = newest_first([event for event in events if _matches(event, filters)])
    assert page.events == expected
    assert page.total == len(expected)


async def test_a_typed_field_filter_also_finds_equal_numbers_in_strings(store: LogStore) -> None:
    events = [
        make_event("int", fields={"status": 500}),
        make_event("float", fields={"status": 500.0}),
        make_event("string", fields={"status": "500"}),
        make_event("other", fields={"status": 501}),
    ]
    await store.write(events)

    page = await store.search(SearchQuery("acme", equals("fields.status", 500), size=1000))

    assert sorted(ids(page)) == ["float", "int", "string"]


async def test_an_equals_sign_in_a_key_never_makes_it_match_another_key(store: LogStore) -> None:
    await store.write(
        [
            make_event("key-with-sign", fields={"a=b": "c", "x\\": "=y"}),
            make_event("value-with-sign", fields={"a": "b=c", "x": "\\=y"}),
        ]
    )

    for query, expected in (
        ('fields.a:"b=c"', ["value-with-sign"]),
        ("fields.a:b*", ["value-with-sign"]),
        ("_exists_:fields.a", ["value-with-sign"]),
        ('fields.x:"\\\\=y"', ["value-with-sign"]),
        ("_exists_:fields.x", ["value-with-sign"]),
    ):
        assert ids(await search_all(store, query=query)) == expected, query


# --- text --------------------------------------------------------------------------------------------

MESSAGES = [
    "Payment failed for order 1234",
    "payment succeeded for order 1235",
    "order 1236 failed: payment gateway timeout",
    "user logged in",
    "FAILED to reach payment-gateway",
    "cache warmed",
    "deployed commit 9F86D081884C7D659A2FEAE0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08 to canary",
    "ConnectionResetByPeerExceptionHandlerFactory gave up",
]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


TEXT_CASES = [
    "payment failed",
    "failed payment",
    "PAYMENT, Failed!",
    "payment gateway",
    "payment timeout",
    "order",
    "logged out",
    "",
    "   ",
    "9f86d081884c7d659a2feae0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "connectionresetbypeerexceptionhandlerfactory",
]


@pytest.mark.parametrize("text", TEXT_CASES)
async def test_text_requires_every_word_in_the_message(store: LogStore, text: str) -> None:
    events = [
        make_event(f"evt-{index}", timestamp=DAY1 + timedelta(minutes=index), message=message)
        for index, message in enumerate(MESSAGES)
    ]
    await store.write(events)

    page = await search_all(store, query=text)

    expected = newest_first([event for event in events if _words(text) <= _words(event.message)])
    assert page.events == expected
    assert page.total == len(expected)


# --- query language ----------------------------------------------------------------------------------

NOW = DAY3 + timedelta(hours=12)


def _language_dataset() -> list[LogEvent]:
    return [
        make_event(
            "a",
            timestamp=DAY1 + timedelta(hours=1),
            service="checkout",
            level="error",
            host="web-1",
            message="connection reset by peer",
            fields={"status": 503, "user_id": "u1", "path": "/v1/orders"},
            trace_id="t-1",
        ),
        make_event(
            "b",
            timestamp=DAY1 + timedelta(hours=2),
            service="checkout-worker",
            level="warn",
            host="web-2",
            message="reset connection pool",
            fields={"status": "500", "latency_ms": 250.5},
        ),
        make_event(
            "c",
            timestamp=DAY2 + timedelta(hours=3),
            service="search",
            level="info",
            host="web-1",
            message="query served in 12 ms",
            fields={"status": 200, "user_id": "u2", "cached": True},
        ),
        make_event(
            "d",
            timestamp=DAY3 + timedelta(hours=4),
            service="auth",
            level="error",
            host="db-1",
            message="user-42 login failed: connection refused",
            fields={"status": 599.0, "tags": ["retry", "login"]},
            trace_id="t-2",
        ),
        make_event(
            "e",
            timestamp=DAY3 + timedelta(hours=11),
            service="Checkout",
            level="debug",
            host="web-3",
            message="cache warmed",
            fields={"status": 600, "user_id": None},
        ),
    ]


LANGUAGE_CASES: list[tuple[str, set[str]]] = [
    ('"connection reset"', {"a"}),
    ('message:"reset connection"', {"b"}),
    ("connection", {"a", "b", "d"}),
    ("user-42", {"d"}),
    ("fields.user_id:u1", {"a"}),
    ('fields.status:"500"', {"b"}),
    ("fields.status:500", {"b"}),
    ("fields.tags:login", {"d"}),
    ("fields.path:/v1/*", {"a"}),
    ("fields.status:[500 TO 599]", {"a", "b", "d"}),
    ("fields.status:{500 TO 599}", {"a"}),
    ("fields.status:>=503", {"a", "d", "e"}),
    ("fields.latency_ms:>250", {"b"}),
    ("service:check*", {"a", "b"}),
    ("host:web-?", {"a", "b", "c", "e"}),
    ("level:ERROR", {"a", "d"}),
    ("NOT level:error", {"b", "c", "e"}),
    ("-service:check* -level:debug", {"c", "d"}),
    ("service:search OR service:auth", {"c", "d"}),
    ("level:(warn OR debug)", {"b", "e"}),
    ("(service:search OR level:error) AND host:web-1", {"a", "c"}),
    ("_exists_:trace_id", {"a", "d"}),
    ("_exists_:fields.user_id", {"a", "c"}),
    ("NOT _exists_:fields.user_id", {"b", "d", "e"}),
    ("fields.status:[500 TO 599] AND service:check*", {"a", "b"}),
    (f"timestamp:[{DAY2.isoformat()} TO {DAY3.isoformat()}]", {"c"}),
    (f"timestamp:>={DAY3.isoformat()}", {"d", "e"}),
    ("timestamp:>now-2h", {"e"}),
    ("timestamp:[now-2d TO now-1d]", {"c"}),
    ("timestamp:<now-2d OR fields.cached:true", {"a", "b", "c"}),
    ("*", {"a", "b", "c", "d", "e"}),
    ("service:nothing*", set()),
]


@pytest.mark.parametrize(("query", "expected"), LANGUAGE_CASES, ids=[query for query, _ in LANGUAGE_CASES])
async def test_query_language_constructs_select_the_right_events(
    store: LogStore, query: str, expected: set[str]
) -> None:
    events = _language_dataset()
    await store.write(events)
    node = parse(query)

    page = await store.search(SearchQuery("acme", node, now=NOW, size=1000))

    matcher = to_matcher(node, NOW)
    assert {event.id for event in events if matcher(event)} == expected, "the case itself is wrong"
    assert page.events == newest_first([event for event in events if event.id in expected])
    assert page.total == len(expected)


async def test_a_query_and_structured_filters_combine(store: LogStore) -> None:
    await store.write(_language_dataset())
    node = all_of([parse("connection OR cache"), any_of([equals("level", "error"), equals("level", "debug")])])

    page = await store.search(SearchQuery("acme", node, size=1000))

    assert ids(page) == ["e", "d", "a"]


async def test_a_query_time_range_only_opens_the_partitions_it_overlaps(store: LogStore) -> None:
    await store.write(_language_dataset())

    inside_day2 = await store.search(
        SearchQuery("acme", parse(f"timestamp:[{DAY2.isoformat()} TO {(DAY2 + timedelta(hours=5)).isoformat()}]"))
    )
    contradictory = await store.search(
        SearchQuery("acme", parse(f"timestamp:<{DAY1.isoformat()} AND timestamp:>{DAY3.isoformat()}"))
    )

    assert ids(inside_day2) == ["c"]
    assert inside_day2.partitions == [f"acme/{DAY2.date().isoformat()}"]
    assert contradictory.events == []
    assert contradictory.total == 0
    assert contradictory.partitions == []


async def test_a_query_time_range_and_the_request_range_both_apply(store: LogStore) -> None:
    await store.write(_language_dataset())

    page = await store.search(SearchQuery("acme", parse("timestamp:>=now-2d"), now=NOW, start=DAY1, end=DAY3))

    assert ids(page) == ["c"]


async def test_relative_times_resolve_against_the_query_now(store: LogStore) -> None:
    await store.write(_language_dataset())
    node = parse("timestamp:[now-1d TO now]")

    assert ids(await store.search(SearchQuery("acme", node, now=NOW))) == ["e", "d"]
    assert ids(await store.search(SearchQuery("acme", node, now=DAY2 + timedelta(hours=12)))) == ["c"]


async def test_a_time_bound_out_of_range_is_a_query_error(store: LogStore) -> None:
    await store.write(_language_dataset())

    with pytest.raises(QuerySyntaxError):
        await store.search(SearchQuery("acme", parse("timestamp:>now-999999999w"), now=NOW))


# --- time range and order ----------------------------------------------------------------------------


async def test_a_time_range_spans_days_with_inclusive_start_and_exclusive_end(store: LogStore) -> None:
    moments = [
        DAY1,
        DAY1 + timedelta(hours=12),
        DAY1 + timedelta(hours=12) + ONE_US,
        DAY2 - ONE_US,
        DAY2,
        DAY2 + timedelta(hours=6),
        DAY3,
        DAY3 + timedelta(hours=6) - ONE_US,
        DAY3 + timedelta(hours=6),
        DAY3 + timedelta(hours=23),
    ]
    events = [make_event(f"evt-{index}", timestamp=moment) for index, moment in enumerate(moments)]
    await store.write(events)
    start, end = DAY1 + timedelta(hours=12), DAY3 + timedelta(hours=6)

    page = await search_all(store, start=start, end=end)

    expected = newest_first([event for event in events if start <= event.timestamp < end])
    assert page.events == expected
    assert {event.timestamp.date() for event in page.events} == {DAY1.date(), DAY2.date(), DAY3.date()}
    assert page.partitions, "the partitions searched are reported"
    assert (await search_all(store, start=DAY2)).total == 6
    assert (await search_all(store, end=DAY2)).total == 4
    assert (await search_all(store, start=end, end=start)).total == 0


@pytest.fixture
def tied_events() -> list[LogEvent]:
    moments = [DAY1 + timedelta(seconds=1), DAY1 + timedelta(seconds=2), DAY2 + timedelta(seconds=1)]
    names = ["m", "c", "x", "a", "q", "k", "z", "b", "f"]
    return [make_event(f"evt-{name}", timestamp=moments[index % 3]) for index, name in enumerate(names)]


async def test_results_are_newest_first_by_default_with_id_as_tie_breaker(
    store: LogStore, tied_events: list[LogEvent]
) -> None:
    await store.write(tied_events)

    page = await search_all(store)

    assert page.events == newest_first(tied_events)


async def test_results_can_be_oldest_first_with_id_as_tie_breaker(store: LogStore, tied_events: list[LogEvent]) -> None:
    await store.write(tied_events)

    page = await search_all(store, order="asc")

    assert page.events == sorted(tied_events, key=lambda event: (event.timestamp, event.id))


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_a_page_cut_inside_equal_timestamps_keeps_the_id_order(
    store: LogStore, tied_events: list[LogEvent], order: Literal["desc", "asc"]
) -> None:
    events = tied_events + [
        make_event(f"tie-{index:02d}", timestamp=DAY1 + timedelta(seconds=2)) for index in range(25, 0, -1)
    ]
    await store.write(events)
    full = sorted(events, key=lambda event: (event.timestamp, event.id), reverse=order == "desc")

    for size in (1, 2, 4, 7, 11, 20, 40):
        page = await store.search(SearchQuery("acme", size=size, order=order))
        assert page.events == full[:size], f"size={size}"
        assert page.total == len(events)


async def test_size_caps_the_page_but_not_the_total(store: LogStore) -> None:
    events = [
        make_event(
            f"evt-{index:02d}",
            timestamp=DAY1 + timedelta(hours=index),
            level="error" if index % 2 else "info",
        )
        for index in range(40)
    ]
    await store.write(events)

    page = await store.search(SearchQuery("acme", size=7))
    errors = await store.search(SearchQuery("acme", parse("level:error"), size=3))
    empty_page = await store.search(SearchQuery("acme", size=0))

    assert page.events == newest_first(events)[:7]
    assert page.total == 40
    assert not page.total_is_lower_bound
    assert errors.events == newest_first([event for event in events if event.level == "error"])[:3]
    assert errors.total == 20
    assert empty_page.events == []
    assert empty_page.total == 40


# --- cursor and capped totals ------------------------------------------------------------------------


async def read_every_page(
    store: LogStore, size: int, *, order: Literal["desc", "asc"] = "desc", query: str = ""
) -> tuple[list[LogEvent], list[SearchPage]]:
    """Page through all matches with the cursor; the events in the order received, and every page."""
    events: list[LogEvent] = []
    pages: list[SearchPage] = []
    after: SearchAfter | None = None
    for _ in range(1000):
        page = await store.search(SearchQuery("acme", parse(query), size=size, order=order, after=after))
        pages.append(page)
        events.extend(page.events)
        if len(page.events) < size:
            return events, pages
        after = SearchAfter.of(page.events[-1])
    raise AssertionError("paging did not end")


def in_order(events: list[LogEvent], order: Literal["desc", "asc"]) -> list[LogEvent]:
    return sorted(events, key=lambda event: (event.timestamp, event.id), reverse=order == "desc")


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("size", [1, 3, 4, 10])
async def test_the_cursor_pages_through_ties_and_days_without_gaps_or_repeats(
    store: LogStore, tied_events: list[LogEvent], order: Literal["desc", "asc"], size: int
) -> None:
    events = tied_events + [
        make_event(f"tie-{index:02d}", timestamp=DAY1 + timedelta(seconds=2)) for index in range(12, 0, -1)
    ]
    events += [make_event(f"day3-{index}", timestamp=DAY3 + timedelta(minutes=index)) for index in range(5)]
    await store.write(events)

    received, pages = await read_every_page(store, size, order=order)

    assert received == in_order(events, order)
    assert {page.total for page in pages} == {len(events)}, "the total ignores the cursor"


async def test_the_cursor_applies_on_top_of_the_query(store: LogStore) -> None:
    events = [
        make_event(
            f"evt-{index:02d}", timestamp=DAY1 + timedelta(minutes=index // 3), level=("error", "info")[index % 2]
        )
        for index in range(30)
    ]
    await store.write(events)

    received, pages = await read_every_page(store, 4, query="level:error")

    assert received == newest_first([event for event in events if event.level == "error"])
    assert pages[0].total == 15


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_events_arriving_between_pages_neither_shift_nor_repeat_results(
    store: LogStore, order: Literal["desc", "asc"]
) -> None:
    old = [make_event(f"old-{index:02d}", timestamp=DAY2 + timedelta(seconds=index % 5)) for index in range(20)]
    await store.write(old)
    first = await store.search(SearchQuery("acme", size=6, order=order))
    # New events land everywhere: newer than all, older than all, and tied with the page boundary.
    boundary = first.events[-1]
    arrivals = [
        make_event("new-late", timestamp=DAY3),
        make_event("new-early", timestamp=DAY1),
        make_event(boundary.id + "-after", timestamp=boundary.timestamp),
        make_event("a-before-" + boundary.id, timestamp=boundary.timestamp),
    ]
    await store.write(arrivals)

    rest: list[LogEvent] = []
    after = SearchAfter.of(boundary)
    while True:
        page = await store.search(SearchQuery("acme", size=6, order=order, after=after))
        rest.extend(page.events)
        if len(page.events) < 6:
            break
        after = SearchAfter.of(page.events[-1])

    everything = in_order(old + arrivals, order)
    expected_rest = everything[everything.index(boundary) + 1 :]
    assert rest == expected_rest
    assert len({event.id for event in first.events + rest}) == len(first.events) + len(rest)
    assert set(event.id for event in old) <= {event.id for event in first.events + rest}


async def test_a_cursor_past_every_event_gives_an_empty_page(store: LogStore) -> None:
    events = [make_event(f"evt-{index}", timestamp=DAY2 + timedelta(minutes=index)) for index in range(3)]
    await store.write(events)
    oldest = newest_first(events)[-1]

    page = await store.search(SearchQuery("acme", size=10, after=SearchAfter.of(oldest)))

    assert page.events == []
    assert page.total == 3


@pytest.mark.parametrize(
    ("cap", "total", "lower_bound"), [(10, 10, True), (29, 29, True), (30, 30, False), (100, 30, False)]
)
async def test_the_total_is_exact_up_to_the_cap_then_a_lower_bound(
    store: LogStore, cap: int, total: int, lower_bound: bool
) -> None:
    events = [
        make_event(f"evt-{index:02d}", timestamp=(DAY1, DAY2, DAY3)[index % 3] + timedelta(minutes=index))
        for index in range(30)
    ]
    await store.write(events)

    page = await store.search(SearchQuery("acme", size=5, total_cap=cap))

    assert page.events == newest_first(events)[:5]
    assert (page.total, page.total_is_lower_bound) == (total, lower_bound)


# --- durability and resources ------------------------------------------------------------------------


async def test_data_survives_close_and_reopen(open_store: OpenStore) -> None:
    events = [make_event(f"evt-{index}", timestamp=DAY1 + timedelta(hours=index * 7)) for index in range(10)]
    first = await open_store()
    await first.write(events)
    await first.close()

    reopened = await open_store()
    page = await search_all(reopened)
    await reopened.write(events)
    await reopened.write([make_event("evt-after", timestamp=DAY3)])

    assert page.events == newest_first(events)
    assert (await search_all(reopened)).total == 11


async def test_nothing_is_lost_when_writers_and_readers_are_recycled(open_store: OpenStore) -> None:
    store = await open_store(tight_limits=True)
    tenants = [f"tenant-{index}" for index in range(5)]
    written: dict[str, list[LogEvent]] = {tenant: [] for tenant in tenants}

    for round_number in range(3):
        for tenant in tenants:
            batch = [
                make_event(
                    f"evt-{round_number}-{index}",
                    tenant_id=tenant,
                    timestamp=(DAY1, DAY2)[index % 2] + timedelta(minutes=round_number * 10 + index),
                )
                for index in range(4)
            ]
            await store.write(batch)
            written[tenant].extend(batch)
        # Reading every tenant in between forces reopening partitions that were evicted.
        for tenant in tenants:
            assert (await search_all(store, tenant)).total == len(written[tenant])

    for tenant in tenants:
        assert (await search_all(store, tenant)).events == newest_first(written[tenant])


async def test_ping_succeeds_on_a_started_store(store: LogStore) -> None:
    await store.ping()
