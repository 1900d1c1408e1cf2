"""The `LogStore` contract for old data, on every adapter: imported history lands in a few month partitions
(not one per day), is searched and aggregated exactly together with the live day partitions it overlaps, and
retention drops a partition only once everything in it is past retention by the tenant's basis."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import msgspec

from mintlog.domain.events import LogEvent
from mintlog.ports.aggregation import AggregateQuery, HistogramGroup, MetricSpec
from mintlog.ports.logstore import LogStore, SearchAfter, SearchQuery
from mintlog.query import parse
from tests.contract.test_logstore import ids, make_event, newest_first, search_all

MARCH = datetime(2024, 3, 1, tzinfo=UTC)
IMPORTED_AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def received(event: LogEvent, at: datetime) -> LogEvent:
    """`event` as if it had arrived at `at` (imported history arrives long after its time)."""
    return msgspec.structs.replace(event, received_at=at)


def live_and_imported_march() -> tuple[list[LogEvent], list[LogEvent]]:
    """Events of March 2024 written live (received on their day) and the same month's history imported later,
    with interleaved times and equal timestamps across the two kinds."""
    rng = random.Random(11)
    live: list[LogEvent] = []
    imported: list[LogEvent] = []
    for n in range(60):
        moment = MARCH + timedelta(days=rng.randrange(31), seconds=rng.randrange(86_400))
        live.append(make_event(f"live-{n:02d}", timestamp=moment, fields={"n": n}))
        tie = moment if n % 5 == 0 else MARCH + timedelta(days=rng.randrange(31), seconds=rng.randrange(86_400))
        imported.append(
            received(make_event(f"hist-{n:02d}", timestamp=tie, message="imported", fields={"n": n}), IMPORTED_AT)
        )
    return live, imported


async def test_imported_history_goes_to_month_partitions_and_is_searched_in_exact_order_with_live_days(
    store: LogStore,
) -> None:
    live, imported = live_and_imported_march()
    await store.write(live)
    await store.write(imported)
    await store.write(imported[:10])  # a redelivery stores nothing twice
    everything = newest_first(live + imported)

    newest = await search_all(store, now=NOW)
    oldest = await search_all(store, now=NOW, order="asc")

    assert ids(newest) == [event.id for event in everything]
    assert ids(oldest) == [event.id for event in reversed(everything)]
    assert newest.total == 120
    assert "acme/2024-03@2026-11" in newest.partitions
    assert {event.received_at for event in newest.events if event.id.startswith("hist")} == {IMPORTED_AT}
    for order in ("desc", "asc"):
        paged: list[str] = []
        after: SearchAfter | None = None
        while True:
            page = await store.search(
                SearchQuery(tenant_id="acme", node=parse(""), now=NOW, size=7, order=order, after=after)
            )
            paged.extend(ids(page))
            if len(page.events) < 7:
                break
            after = SearchAfter.of(page.events[-1])
        expected = [event.id for event in everything]
        assert paged == (expected if order == "desc" else list(reversed(expected)))
    imported_only = await search_all(store, "acme", "imported", now=NOW, start=MARCH + timedelta(days=10))
    assert ids(imported_only) == [
        event.id for event in newest_first(imported) if event.timestamp >= MARCH + timedelta(days=10)
    ]


async def test_histograms_and_metrics_count_overlapping_partitions_exactly(store: LogStore) -> None:
    live, imported = live_and_imported_march()
    await store.write(live + imported)

    result = await store.aggregate(
        AggregateQuery(
            tenant_id="acme",
            node=parse(""),
            now=NOW,
            start=MARCH,
            end=MARCH + timedelta(days=31),
            groups=(HistogramGroup(86_400),),
            metrics=(MetricSpec(name="sum_n", field="fields.n", op="sum"),),
        )
    )

    per_day = {bucket.key: bucket.count for bucket in result.buckets if bucket.count}
    expected: dict[datetime, int] = {}
    for event in live + imported:
        day = datetime.combine(event.timestamp.date(), datetime.min.time(), tzinfo=UTC)
        expected[day] = expected.get(day, 0) + 1
    assert result.total == 120
    assert per_day == expected
    sums = [bucket.metrics["sum_n"] for bucket in result.buckets if bucket.count]
    assert sum(value for value in sums if isinstance(value, float)) == 2 * sum(range(60))


async def test_a_thousand_days_of_history_are_kept_in_a_few_dozen_partitions(store: LogStore) -> None:
    start = datetime(2023, 1, 1, 12, tzinfo=UTC)
    history = [
        received(make_event(f"day-{n:04d}", timestamp=start + timedelta(days=n)), IMPORTED_AT) for n in range(1000)
    ]
    await store.write(history)

    page = await search_all(store, now=NOW)
    march_2024 = await search_all(store, now=NOW, start=MARCH, end=MARCH + timedelta(days=31))

    assert page.total == 1000
    assert ids(page) == [event.id for event in newest_first(history)]
    assert len(page.partitions) == 33
    assert all(name.endswith("@2026-11") for name in page.partitions)
    assert march_2024.partitions == ["acme/2024-03@2026-11"]
    assert march_2024.total == 31


async def test_retention_by_event_time_drops_a_month_of_history_once_the_whole_month_is_past(
    store: LogStore,
) -> None:
    live, imported = live_and_imported_march()
    await store.write(live + imported)

    mid_march = await store.drop_partitions_before("acme", date(2024, 3, 20))
    after_mid_march = await search_all(store, now=NOW)
    april = await store.drop_partitions_before("acme", date(2024, 4, 1))

    assert mid_march == sorted(
        {f"acme/{event.timestamp.date().isoformat()}" for event in live if event.timestamp.day < 20}
    )
    # Every event on or after the cutoff is kept; the imported month is kept whole until the month is over.
    assert {event.id for event in after_mid_march.events} == {
        event.id for event in live + imported if event.id.startswith("hist") or event.timestamp.day >= 20
    }
    assert "acme/2024-03@2026-11" in april
    assert (await search_all(store, now=NOW)).total == 0


async def test_retention_by_arrival_keeps_imported_history_until_its_arrival_month_is_past(store: LogStore) -> None:
    _live, imported = live_and_imported_march()
    today = make_event("today", timestamp=IMPORTED_AT)
    await store.write([*imported, today])

    by_event_time_would_drop = await store.drop_partitions_before("acme", date(2026, 11, 1), basis="received_at")
    arrival_day_and_two_late_days = await store.drop_partitions_before("acme", date(2026, 11, 28), basis="received_at")
    day_after = await store.drop_partitions_before("acme", date(2026, 11, 29), basis="received_at")
    still_november = await store.drop_partitions_before("acme", date(2026, 11, 30), basis="received_at")
    december = await store.drop_partitions_before("acme", date(2026, 12, 1), basis="received_at")

    assert by_event_time_would_drop == []
    # A day partition goes once its day and the two days its late events may arrive on are past ...
    assert arrival_day_and_two_late_days == []
    assert day_after == ["acme/2026-11-26"]
    # ... a month of history once the month it was received in is.
    assert still_november == []
    assert december == ["acme/2024-03@2026-11"]
    assert (await search_all(store, now=NOW)).total == 0
