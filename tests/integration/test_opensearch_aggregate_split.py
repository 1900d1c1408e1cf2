"""OpenSearch aggregation split against the real cluster: when buckets overflow and the request is split, the
split answer must equal the one-request answer (the request shape and overflow paths with a scripted client:
tests/unit/test_opensearch_aggregate.py)."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from opensearchpy import AsyncOpenSearch

from mintlog.adapters.logstore.opensearch import ClusterOptions, OpenSearchLogStore
from mintlog.adapters.logstore.opensearch_aggregate import aggregate_indices
from mintlog.adapters.logstore.opensearch_client import new_client
from mintlog.ports.aggregation import Bucket, Group, HistogramGroup, MetricSpec, TermsGroup
from mintlog.query.opensearch import to_opensearch
from tests.contract.test_logstore import DAY1, make_event
from tests.services import delete_opensearch_indices
from tests.unit.test_opensearch_aggregate import DAY, query_of


@pytest.fixture
async def os_index(opensearch_url: str, tmp_path: Path) -> AsyncIterator[tuple[AsyncOpenSearch, str]]:
    """A store with varied events over three days; yields a client and the tenant's index pattern."""
    prefix = "a" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    store = OpenSearchLogStore(ClusterOptions(urls=[opensearch_url]), index_prefix=prefix)
    client = new_client(ClusterOptions(urls=[opensearch_url]))
    generator = random.Random(11)
    try:
        await store.start()
        await store.write(
            [
                make_event(
                    f"evt-{index:03d}",
                    timestamp=DAY1 + timedelta(minutes=23 * index),
                    service=generator.choice(["checkout", "search", "auth", "billing"]),
                    host=generator.choice(["web-1", "web-2", "web-3"]),
                    fields={"ms": round(generator.uniform(10, 500), 2), "region": generator.choice(["eu", "us", "ap"])},
                )
                for index in range(180)  # about three days
            ]
        )
        yield client, f"{prefix}-acme-*"
    finally:
        await client.close()
        await store.close()
        delete_opensearch_indices(opensearch_url, prefix)


class CountingClient:
    def __init__(self, client: AsyncOpenSearch) -> None:
        self.client = client
        self.requests = 0

    async def search(self, **kwargs: Any) -> Any:
        self.requests += 1
        return await self.client.search(**kwargs)


def shape(buckets: list[Bucket]) -> list[tuple[object, int, int, object]]:
    return [(bucket.key, bucket.count, bucket.other_count, shape(bucket.buckets)) for bucket in buckets]


@pytest.mark.integration
@pytest.mark.parametrize(
    "groups",
    [
        (TermsGroup("service"), TermsGroup("host", size=2)),
        (HistogramGroup(6 * 3600), TermsGroup("fields.region", size=2)),
        (TermsGroup("fields.region"),),
    ],
    ids=["terms-terms", "histogram-fields", "fields"],
)
async def test_split_requests_answer_exactly_what_one_request_answers(
    os_index: tuple[AsyncOpenSearch, str], groups: tuple[Group, ...]
) -> None:
    client, index = os_index
    metrics = (
        MetricSpec("mean", "avg", "fields.ms"),
        MetricSpec("n", "count", "fields.ms"),
        MetricSpec("p", "percentiles", "fields.ms", (50.0, 90.0)),
    )
    query = query_of(*groups, metrics=metrics)
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    node_dsl = to_opensearch(query.node, query.now)

    whole = await aggregate_indices(client, index, days, query, node_dsl)
    counting = CountingClient(client)
    split = await aggregate_indices(cast("AsyncOpenSearch", counting), index, days, query, node_dsl, native_buckets=2)

    assert counting.requests > 3  # split, plus one percentile request per leaf whose numbers were split
    assert whole.total == split.total == 180
    assert shape(split.buckets) == shape(whole.buckets)
    assert split.other_count == whole.other_count

    def leaves(buckets: list[Bucket]) -> list[Bucket]:
        return [leaf for bucket in buckets for leaf in (leaves(bucket.buckets) if bucket.buckets else [bucket])]

    for mine, theirs in zip(leaves(split.buckets), leaves(whole.buckets), strict=True):
        assert mine.metrics["n"] == theirs.metrics["n"]
        if theirs.metrics["n"] == 0:
            assert mine.metrics == theirs.metrics
            continue
        assert math.isclose(cast("float", mine.metrics["mean"]), cast("float", theirs.metrics["mean"]), rel_tol=1e-9)
        assert mine.metrics["p"] == pytest.approx(theirs.metrics["p"], rel=0.01)
