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
from mintlog.ports.logstore import LogStore, SearchPage, SearchQuery
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


async def search_all(store: LogStore, tenant_id: str = "acme", **filters: Any) -> SearchPage:
    return await store.search(SearchQuery(tenant_id=tenant_id, size=1000, **filters))


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
    assert (await search_all(store, "globex", text="alpha")).total == 0
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


def _matches(event: LogEvent, query: SearchQuery) -> bool:
    return (
        (not query.levels or event.level in query.levels)
        and (not query.services or event.service in query.services)
        and (not query.hosts or event.host in query.hosts)
        and all(key in event.fields and value in _field_text(event.fields[key]) for key, value in query.fields)
    )


FILTER_CASES = {
    "one level": SearchQuery("acme", levels=("error",)),
    "two levels are alternatives": SearchQuery("acme", levels=("error", "warn")),
    "level is exact": SearchQuery("acme", levels=("ERROR",)),
    "one service": SearchQuery("acme", services=("search",)),
    "two services": SearchQuery("acme", services=("search", "auth")),
    "one host": SearchQuery("acme", hosts=("web-2",)),
    "string field": SearchQuery("acme", fields=(("user_id", "u2"),)),
    "string field is exact": SearchQuery("acme", fields=(("user_id", "U2"),)),
    "number field": SearchQuery("acme", fields=(("status", "500"),)),
    "boolean field": SearchQuery("acme", fields=(("cached", "true"),)),
    "list field matches any item": SearchQuery("acme", fields=(("region", "us"),)),
    "timestamp-like string field": SearchQuery("acme", fields=(("seen_at", "2024-03-09T11:00:00Z"),)),
    "address-like string field": SearchQuery("acme", fields=(("client_ip", "10.0.0.3"),)),
    "two fields all apply": SearchQuery("acme", fields=(("user_id", "u2"), ("status", "500"))),
    "missing field": SearchQuery("acme", fields=(("no_such_field", "x"),)),
    "empty field name": SearchQuery("acme", fields=(("", "x"),)),
    "every filter at once": SearchQuery(
        "acme",
        levels=("error", "warn"),
        services=("checkout", "search"),
        hosts=("web-1",),
        fields=(("status", "500"),),
    ),
}


@pytest.mark.parametrize("query", list(FILTER_CASES.values()), ids=list(FILTER_CASES))
async def test_filters_match_exactly(store: LogStore, query: SearchQuery) -> None:
    events = _filter_dataset()
    await store.write(events)

    page = await store.search(dataclasses.replace(query, size=1000))

    expected = newest_first([event for event in events if _matches(event, query)])
    assert page.events == expected
    assert page.total == len(expected)


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
    'payment AND (failed OR "gateway',
    "status:500 OR *",
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

    page = await search_all(store, text=text)

    expected = newest_first([event for event in events if _words(text) <= _words(event.message)])
    assert page.events == expected
    assert page.total == len(expected)


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
    errors = await store.search(SearchQuery("acme", levels=("error",), size=3))
    empty_page = await store.search(SearchQuery("acme", size=0))

    assert page.events == newest_first(events)[:7]
    assert page.total == 40
    assert not page.total_is_lower_bound
    assert errors.events == newest_first([event for event in events if event.level == "error"])[:3]
    assert errors.total == 20
    assert empty_page.events == []
    assert empty_page.total == 40


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
