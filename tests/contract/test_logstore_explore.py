"""The rest of the `LogStore` contract, on every adapter: retention by whole days, field discovery and an
event's context, exactly as `/v1/logs/fields` and `/v1/logs/{id}/context` use the store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mintlog.errors import NotFound
from mintlog.ports.logstore import LogStore, SearchQuery
from mintlog.query import parse
from mintlog.roles.api.logs.explore import CONTEXT_SAME_FIELDS, context_of, summarize_fields
from tests.contract.test_logstore import DAY1, DAY2, DAY3, ids, make_event, search_all

NOW = DAY3 + timedelta(days=1)


async def test_retention_drops_whole_older_days_of_one_tenant_only(store: LogStore) -> None:
    await store.write(
        [make_event(f"acme-{day:%d}", timestamp=day + timedelta(hours=1)) for day in (DAY1, DAY2, DAY3)]
        + [make_event(f"other-{day:%d}", tenant_id="other", timestamp=day + timedelta(hours=1)) for day in (DAY1, DAY2)]
    )

    dropped = await store.drop_partitions_before("acme", DAY3.date())

    assert dropped == [f"acme/{DAY1:%Y-%m-%d}", f"acme/{DAY2:%Y-%m-%d}"]
    assert ids(await search_all(store, now=NOW)) == [f"acme-{DAY3:%d}"]
    assert ids(await search_all(store, "other", now=NOW)) == [f"other-{DAY2:%d}", f"other-{DAY1:%d}"]
    assert await store.drop_partitions_before("acme", DAY3.date()) == []  # idempotent
    await store.write([make_event("acme-late", timestamp=DAY3 + timedelta(hours=2))])  # the kept day still writes
    assert ids(await search_all(store, now=NOW)) == ["acme-late", f"acme-{DAY3:%d}"]


async def test_field_discovery_sees_the_fields_and_types_that_were_written(store: LogStore) -> None:
    events = [
        make_event(
            f"e{n}",
            timestamp=DAY1 + timedelta(minutes=n),
            service="checkout" if n % 3 else "search",
            level="error" if n % 4 == 0 else "info",
            fields={"status": 500 if n % 2 else 200, "route": f"/r{n % 3}", "cached": n % 5 == 0, "ratio": n / 8},
        )
        for n in range(24)
    ]
    await store.write(events)

    page = await store.search(SearchQuery(tenant_id="acme", node=parse(""), now=NOW, size=1000))
    summaries = {summary.name: summary for summary in summarize_fields(page.events, top=3)}

    assert summaries == {summary.name: summary for summary in summarize_fields(events, top=3)}
    assert summaries["fields.status"].type == "number"
    assert summaries["fields.cached"].type == "boolean"
    assert summaries["fields.route"].type == "string"
    assert [(value.value, value.count) for value in summaries["service"].top_values] == [
        ("checkout", 16),
        ("search", 8),
    ]


async def test_context_is_the_neighbours_from_the_same_service_and_host(store: LogStore) -> None:
    mine = [make_event(f"m{n:02d}", timestamp=DAY2 + timedelta(seconds=n)) for n in range(10)]
    elsewhere = [
        make_event(f"x{n:02d}", timestamp=DAY2 + timedelta(seconds=n, milliseconds=500), host="web-2")
        for n in range(10)
    ]
    tie = make_event("m05b", timestamp=mine[5].timestamp)  # same instant as m05: ordered by id
    await store.write([*mine, *elsewhere, tie])

    context = await context_of(store, "acme", "m05", before=3, after=3, same=CONTEXT_SAME_FIELDS, now=NOW)

    assert context.event.id == "m05"
    assert [event.id for event in context.before] == ["m02", "m03", "m04"]
    assert [event.id for event in context.after] == ["m05b", "m06", "m07"]
    with pytest.raises(NotFound):
        await context_of(store, "other", "m05", before=1, after=1, same=CONTEXT_SAME_FIELDS, now=NOW)
