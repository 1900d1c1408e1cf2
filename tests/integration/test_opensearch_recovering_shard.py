"""The indexer on a real OpenSearch that answers its health check while the day's index has no started
primary shard: what a node restarted after a kill -9 looks like while it recovers its shards from the
translog. Every write to that index fails with `503 unavailable_shards_exception` far more often than
`max_deliveries`; the batches must wait and be indexed exactly once when the shard starts, never be
dead-lettered (CI lost 600 of 12,440 accepted events that way, 2026-12-05).

The shared cluster is not restarted: the test creates its own index with an allocation filter no node
matches (the primary stays unassigned, as during recovery) and then removes the filter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from opensearchpy import AsyncOpenSearch

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.logstore.opensearch import BulkPolicy, ClusterOptions
from mintlog.adapters.logstore.opensearch_layout import daily_index
from mintlog.metrics import Metrics
from mintlog.ports.logstore import SearchQuery
from mintlog.query import parse
from mintlog.settings import PipelineSettings
from tests.integration.test_opensearch_flood_stage import DAY, CountingStore, fast_indexer, publish_batches
from tests.integration.test_opensearch_store import cluster, prefix
from tests.unit.test_pipeline import bus, drain, wait_until

__all__ = ["bus", "cluster", "prefix"]

pytestmark = pytest.mark.integration

PIPELINE = PipelineSettings(max_deliveries=2, ack_wait_seconds=30)
BATCHES, EVENTS_PER_BATCH = 3, 4
NO_NODE = {"index.routing.allocation.require._name": "no-such-node"}


@pytest.fixture
async def store(opensearch_url: str, prefix: str) -> AsyncIterator[CountingStore]:
    # A 2 s request: each item waits 1 s for its primary shard, then 503; one quick bulk retry per write.
    bulk = BulkPolicy(max_retries=1, initial_backoff_seconds=0.01, max_backoff_seconds=0.02)
    options = ClusterOptions(urls=[opensearch_url], request_timeout_seconds=2)
    opened = CountingStore(options, index_prefix=prefix, bulk=bulk)
    await opened.start()
    yield opened
    await opened.close()


async def test_batches_for_a_shard_that_is_not_started_yet_wait_and_are_indexed_once_it_starts(
    bus: MemoryEventBus, store: CountingStore, cluster: AsyncOpenSearch, prefix: str
) -> None:
    index = daily_index(prefix, "acme", DAY.date())
    # Created from the store's template (mappings), its primary assigned to no node: red, as while recovering.
    await cluster.indices.create(index=index, body={"settings": NO_NODE}, params={"wait_for_active_shards": "0"})
    expected = await publish_batches(bus, BATCHES, EVENTS_PER_BATCH)
    metrics = Metrics()
    worker = fast_indexer(bus, store, metrics, PIPELINE, retry_delay_seconds=0.05)
    await worker.start()
    try:
        await store.ping()  # the cluster answers: to the indexer the store is up
        await wait_until(lambda: store.writes > 3 * PIPELINE.max_deliveries, timeout=120)
        assert metrics.store_write_failed._value.get() == 1  # pyright: ignore[reportPrivateUsage]
        assert await drain(bus, "DEAD_LETTERS", "deadletter.>") == [], "a recovering shard is not the events' fault"

        await cluster.indices.put_settings(index=index, body={"index.routing.allocation.require._name": None})
        indexed = metrics.indexer_events._value  # pyright: ignore[reportPrivateUsage]
        await wait_until(lambda: indexed.get() == len(expected), timeout=120)
    finally:
        await worker.stop()

    page = await store.search(SearchQuery("acme", parse(""), size=1000, start=DAY - timedelta(days=1)))
    assert (sorted(item.id for item in page.events), page.total) == (sorted(expected), len(expected))
    assert metrics.store_write_failed._value.get() == 0  # pyright: ignore[reportPrivateUsage]
    assert await drain(bus, "DEAD_LETTERS", "deadletter.>") == []
