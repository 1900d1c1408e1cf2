"""Aggregations of the Tantivy store beyond the `LogStore` contract: splitting, limits, the merged sketch."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.adapters.logstore.tantivy_aggregate import aggregate_partitions
from mintlog.adapters.logstore.tantivy_partitions import PartitionCache
from mintlog.adapters.logstore.tantivy_schema import build_schema
from mintlog.domain.events import FieldValue, LogEvent
from mintlog.errors import BadRequest, StoreUnavailable
from mintlog.ports.aggregation import AggregateQuery, HistogramGroup, MetricSpec, TermsGroup

MiB = 1024 * 1024
DAY1 = datetime(2024, 3, 9, tzinfo=UTC)


def make_event(event_id: str, timestamp: datetime, fields: dict[str, FieldValue]) -> LogEvent:
    return LogEvent(
        id=event_id,
        tenant_id="acme",
        timestamp=timestamp,
        received_at=timestamp,
        service="checkout",
        level="info",
        message="request served",
        host="web-1",
        fields=fields,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TantivyLogStore]:
    store = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB)
    await store.start()
    yield store
    await store.close()


def reader(store: TantivyLogStore) -> PartitionCache:
    """A second, read-only view of the store's partitions, for calling the aggregation with other limits."""
    return PartitionCache(
        store.root, build_schema(), writer_heap_bytes=16 * MiB, max_open_writers=1, max_open_readers=8
    )


async def test_a_partition_with_more_values_than_one_native_aggregation_returns_is_split(
    store: TantivyLogStore,
) -> None:
    values = [f"user-{(index * 7) % 40}" for index in range(400)]
    await store.write(
        [
            make_event(f"evt-{index:03d}", DAY1 + timedelta(seconds=97 * index), {"user": value, "ms": index})
            for index, value in enumerate(values)
        ]
    )
    query = AggregateQuery(
        tenant_id="acme", groups=(TermsGroup("fields.user", size=5),), metrics=(MetricSpec("top", "max", "fields.ms"),)
    )

    result = aggregate_partitions(reader(store), build_schema(), query, native_buckets=8)

    expected = sorted(Counter(values).items(), key=lambda item: (-item[1], item[0]))
    assert [(bucket.key, bucket.count) for bucket in result.buckets] == expected[:5]
    assert result.other_count == 400 - sum(count for _value, count in expected[:5])
    latest = {value: index for index, value in enumerate(values)}
    assert [bucket.metrics["top"] for bucket in result.buckets] == [
        latest[str(bucket.key)] for bucket in result.buckets
    ]


async def test_more_distinct_buckets_than_the_limit_is_a_bad_request(store: TantivyLogStore) -> None:
    await store.write([make_event(f"evt-{index}", DAY1, {"request": f"r-{index}"}) for index in range(50)])
    query = AggregateQuery(tenant_id="acme", groups=(TermsGroup("fields.request"),))

    with pytest.raises(BadRequest) as raised:
        aggregate_partitions(reader(store), build_schema(), query, max_buckets=20)

    assert raised.value.code == "too_many_buckets"
    assert len((await store.aggregate(query)).buckets) == 10


async def test_merged_percentiles_handle_negatives_zeros_and_tiny_numbers(store: TantivyLogStore) -> None:
    generator = random.Random(11)
    numbers: list[float] = [0.0] * 40 + [1e-300] * 5
    numbers += [generator.uniform(-900, -100) for _ in range(200)]
    numbers += [generator.uniform(0.001, 0.002) for _ in range(200)]
    numbers += [generator.uniform(1e6, 2e6) for _ in range(200)]
    generator.shuffle(numbers)
    await store.write(
        [
            make_event(f"evt-{index:03d}", DAY1 + timedelta(minutes=11 * index), {"value": number})
            for index, number in enumerate(numbers)
        ]
    )
    percents = (1.0, 25.0, 40.0, 50.0, 60.0, 75.0, 99.0, 100.0)
    query = AggregateQuery(tenant_id="acme", metrics=(MetricSpec("p", "percentiles", "fields.value", percents),))

    result = await store.aggregate(query)

    estimates = result.metrics["p"]
    assert isinstance(estimates, dict)
    ordered = sorted(numbers)
    for percent in percents:
        expected = ordered[math.floor(percent / 100 * (len(ordered) - 1))]
        estimate = estimates[str(percent)]
        assert estimate is not None
        if abs(expected) < 1e-200:
            assert estimate == 0.0
        else:
            assert abs(estimate - expected) <= 0.004 * abs(expected), (percent, estimate, expected)


async def test_an_unknown_group_or_metric_field_is_refused(store: TantivyLogStore) -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        await store.aggregate(AggregateQuery(tenant_id="acme", groups=(TermsGroup("message"),)))
    with pytest.raises(ValueError, match="cannot summarize"):
        await store.aggregate(AggregateQuery(tenant_id="acme", metrics=(MetricSpec("m", "max", "level"),)))


async def test_a_histogram_longer_than_the_bucket_limit_is_refused(store: TantivyLogStore) -> None:
    query = AggregateQuery(tenant_id="acme", groups=(HistogramGroup(1),), start=DAY1, end=DAY1 + timedelta(days=1))

    with pytest.raises(ValueError, match="more than"):
        await store.aggregate(query)


async def test_aggregating_a_stopped_store_is_unavailable(tmp_path: Path) -> None:
    stopped = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB)

    with pytest.raises(StoreUnavailable):
        await stopped.aggregate(AggregateQuery(tenant_id="acme"))
