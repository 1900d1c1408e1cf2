"""The indexer on a real OpenSearch whose index passed the flood-stage watermark: the batches wait, retried
without a delivery limit and never dead-lettered, `ping` (so `/readyz`) names the store and
`mintlog_store_write_failed` is 1; once the block is lifted every event is indexed exactly once.

The cluster's disk is not filled (it is shared): the test sets `index.blocks.read_only_allow_delete` on its own
index, which is what OpenSearch does at flood stage and gives the same `cluster_block_exception`, and clears it
as OpenSearch 2.x does once the disk is below the high watermark.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from opensearchpy import AsyncOpenSearch

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.logstore.opensearch import BulkPolicy, ClusterOptions, OpenSearchLogStore
from mintlog.adapters.logstore.opensearch_layout import daily_index
from mintlog.domain.events import LogEvent, ParsedBatch
from mintlog.domain.streams import encode_bus_message
from mintlog.errors import StoreDiskFailure
from mintlog.metrics import Metrics
from mintlog.ports.logstore import LogStore, SearchQuery
from mintlog.query import parse
from mintlog.roles.pipeline.indexer import IndexerWorker
from mintlog.settings import IndexerSettings, PipelineSettings
from tests.integration.test_opensearch_store import block_writes, cluster, prefix, unblock_writes
from tests.unit.test_pipeline import bus, drain, wait_until

__all__ = ["bus", "cluster", "prefix"]  # the fixtures, shared with the store's and the pipeline's own tests

pytestmark = pytest.mark.integration

DAY = datetime(2024, 3, 9, 12, tzinfo=UTC)
PIPELINE = PipelineSettings(max_deliveries=2, ack_wait_seconds=30)
BATCHES, EVENTS_PER_BATCH = 3, 5


class CountingStore(OpenSearchLogStore):
    """The real store, counting the writes the indexer asks of it."""

    writes = 0

    async def write(self, events: Sequence[LogEvent]) -> None:
        self.writes += 1
        await super().write(events)


def event(event_id: str) -> LogEvent:
    return LogEvent(
        id=event_id,
        tenant_id="acme",
        timestamp=DAY,
        received_at=DAY,
        service="checkout",
        level="info",
        message=f"event {event_id}",
        host="web-1",
    )


async def publish_batches(bus: MemoryEventBus, batches: int, events_per_batch: int) -> list[str]:
    """Publish `batches` parsed batches of acme's events on `logs.parsed.acme`; the ids of their events."""
    ids: list[str] = []
    for batch in range(batches):
        events = [event(f"b{batch}-{number}") for number in range(events_per_batch)]
        ids += [item.id for item in events]
        payload = encode_bus_message(ParsedBatch(batch_id=f"b{batch}", tenant_id="acme", events=events))
        await bus.publish("logs.parsed.acme", payload, msg_id=f"parsed:b{batch}")
    return ids


def fast_indexer(
    bus: MemoryEventBus, store: LogStore, metrics: Metrics, pipeline: PipelineSettings, *, retry_delay_seconds: float
) -> IndexerWorker:
    """An indexer that flushes every 20 ms and retries after `retry_delay_seconds`."""
    return IndexerWorker(
        bus=bus,
        store=store,
        pipeline=pipeline,
        settings=IndexerSettings(flush_interval_ms=20, max_batch_events=10_000, fetch_batch=64),
        metrics=metrics,
        grace_seconds=5,
        retry_delay_seconds=retry_delay_seconds,
    )


@pytest.fixture
async def store(opensearch_url: str, prefix: str) -> AsyncIterator[CountingStore]:
    # Few, fast bulk retries: before the fix a blocked batch gave up quickly and was dead-lettered.
    bulk = BulkPolicy(max_retries=1, initial_backoff_seconds=0.01, max_backoff_seconds=0.02)
    opened = CountingStore(ClusterOptions(urls=[opensearch_url]), index_prefix=prefix, bulk=bulk)
    await opened.start()
    yield opened
    await opened.close()


async def test_batches_a_flood_stage_block_refuses_wait_and_are_indexed_once_it_is_lifted(
    bus: MemoryEventBus, store: CountingStore, cluster: AsyncOpenSearch, prefix: str
) -> None:
    await store.write([event("before")])  # the day's index exists, as on a cluster that was filling up
    index = daily_index(prefix, "acme", DAY.date())
    await block_writes(cluster, index)
    expected = ["before", *await publish_batches(bus, BATCHES, EVENTS_PER_BATCH)]
    metrics = Metrics()
    worker = fast_indexer(bus, store, metrics, PIPELINE, retry_delay_seconds=0.1)
    await worker.start()
    try:
        writes_before = store.writes
        await wait_until(lambda: store.writes - writes_before > 3 * PIPELINE.max_deliveries, timeout=60)
        assert metrics.store_write_failed._value.get() == 1  # pyright: ignore[reportPrivateUsage]
        with pytest.raises(StoreDiskFailure, match=f"refuses writes to {index}"):
            await store.ping()
        assert await drain(bus, "DEAD_LETTERS", "deadletter.>") == [], "the cluster refused, not the events"

        await unblock_writes(cluster, index)
        indexed = metrics.indexer_events._value  # pyright: ignore[reportPrivateUsage]
        await wait_until(lambda: indexed.get() == len(expected) - 1, timeout=60)
    finally:
        await unblock_writes(cluster, index)
        await worker.stop()

    page = await store.search(SearchQuery("acme", parse(""), size=1000, start=DAY - timedelta(days=1)))
    assert (sorted(item.id for item in page.events), page.total) == (sorted(expected), len(expected))
    assert metrics.store_write_failed._value.get() == 0  # pyright: ignore[reportPrivateUsage]
    await store.ping()
    assert await drain(bus, "DEAD_LETTERS", "deadletter.>") == []
