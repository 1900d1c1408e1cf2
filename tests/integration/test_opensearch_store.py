"""The OpenSearch store against a real OpenSearch 2.19 (scripts/services.sh): what the contract suite cannot show.

Per-item bulk outcomes are provoked on the real cluster: a `read_only_allow_delete` block (what the
flood-stage watermark sets) answers 429 `cluster_block_exception` per item, an index whose primary cannot be
allocated answers 503 per item, a timestamp `date_nanos` cannot hold is refused with 400. A TCP proxy that
is shut down plays a cluster that went away. Every test uses its own index prefix and deletes its indices
and template afterwards (and never changes a setting of the shared cluster itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from opensearchpy import AsyncOpenSearch

from mintlog.adapters.logstore.opensearch import BulkPolicy, ClusterOptions, EventsRejectedError, OpenSearchLogStore
from mintlog.adapters.logstore.opensearch_layout import daily_index, index_template
from mintlog.domain.events import FieldValue, LogEvent
from mintlog.errors import StoreDiskFailure, StoreUnavailable
from mintlog.ports.logstore import SearchPage, SearchQuery
from mintlog.query import parse
from tests.services import UNREACHABLE_OPENSEARCH_URL, delete_opensearch_indices

DAY1 = datetime(2024, 3, 9, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
FAST_RETRIES = BulkPolicy(max_retries=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.05)
PATIENT_RETRIES = BulkPolicy(max_retries=1000, initial_backoff_seconds=0.05, max_backoff_seconds=0.2)
BULK_LOGGER = "mintlog.adapters.logstore.opensearch_bulk"


def make_event(
    event_id: str,
    *,
    tenant_id: str = "acme",
    timestamp: datetime = DAY1 + timedelta(hours=12),
    message: str = "request served",
    fields: dict[str, FieldValue] | None = None,
) -> LogEvent:
    return LogEvent(
        id=event_id,
        tenant_id=tenant_id,
        timestamp=timestamp,
        received_at=DAY3,
        service="checkout",
        level="info",
        message=message,
        host="web-1",
        fields=fields or {},
    )


async def search_all(store: OpenSearchLogStore, tenant_id: str = "acme", query: str = "", **options: Any) -> SearchPage:
    return await store.search(SearchQuery(tenant_id, parse(query), size=1000, **options))


def ids(page: SearchPage) -> list[str]:
    return [event.id for event in page.events]


@pytest.fixture
def prefix(opensearch_url: str) -> Iterator[str]:
    """A fresh index prefix; the test's indices and template are deleted afterwards."""
    name = f"it{secrets.token_hex(6)}"
    yield name
    delete_opensearch_indices(opensearch_url, name)


OpenStore = Callable[..., Awaitable[OpenSearchLogStore]]


@pytest.fixture
async def open_store(opensearch_url: str, prefix: str) -> AsyncIterator[OpenStore]:
    """Opens started stores on the test prefix (by default on the test cluster); all closed at teardown."""
    opened: list[OpenSearchLogStore] = []

    async def open_started(
        *, url: str = opensearch_url, bulk: BulkPolicy | None = None, request_timeout_seconds: float = 30.0
    ) -> OpenSearchLogStore:
        cluster = ClusterOptions(urls=[url], request_timeout_seconds=request_timeout_seconds)
        store = OpenSearchLogStore(cluster, index_prefix=prefix, bulk=bulk)
        await store.start()
        opened.append(store)
        return store

    yield open_started
    for store in opened:
        with contextlib.suppress(StoreUnavailable):
            await store.close()


@pytest.fixture
async def cluster(opensearch_url: str) -> AsyncIterator[AsyncOpenSearch]:
    """A plain client, to inspect and break indices behind the store's back."""
    client = AsyncOpenSearch([opensearch_url])
    yield client
    await client.close()


async def wait_for_retry_log(caplog: pytest.LogCaptureFixture, status: str) -> None:
    """Until the bulk writer logged a retry after an item got `status` (generous deadline: a slow CI)."""
    for _ in range(1200):
        if any("retrying" in record.getMessage() and status in record.getMessage() for record in caplog.records):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no retry after HTTP {status} was logged")


# --- per-item outcomes -------------------------------------------------------------------------------


async def test_an_event_already_stored_counts_as_written_and_keeps_its_first_copy(open_store: OpenStore) -> None:
    store = await open_store()
    first = make_event("evt-1", message="first copy")
    await store.write([first])

    await store.write([make_event("evt-1", message="second copy"), make_event("evt-2")])

    page = await search_all(store)
    assert ids(page) == ["evt-2", "evt-1"] or ids(page) == ["evt-1", "evt-2"]
    assert next(event for event in page.events if event.id == "evt-1") == first
    assert page.total == 2


async def test_an_event_opensearch_refuses_is_named_with_its_reason_and_the_rest_is_stored(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    good = [make_event(f"good-{index}", timestamp=DAY1 + timedelta(minutes=index)) for index in range(3)]
    before_1970 = make_event("too-old", timestamp=datetime(1969, 12, 31, 23, 59, tzinfo=UTC))

    with pytest.raises(ValueError, match="'too-old'") as failure:
        await store.write([good[0], before_1970, *good[1:]])

    assert isinstance(failure.value, EventsRejectedError)
    assert [rejection.event_id for rejection in failure.value.rejections] == ["too-old"]
    assert "HTTP 400 mapper_parsing_exception" in failure.value.rejections[0].reason
    assert sorted(ids(await search_all(store))) == ["good-0", "good-1", "good-2"], "the rest is searchable"


async def block_writes(cluster: AsyncOpenSearch, index: str) -> None:
    """What OpenSearch does to an index with a shard on a node past the flood-stage watermark (this index only:
    the shared cluster's own settings are never changed)."""
    await cluster.indices.put_settings(index=index, body={"index.blocks.read_only_allow_delete": True})


async def unblock_writes(cluster: AsyncOpenSearch, index: str) -> None:
    """What OpenSearch 2.x does once the disk is below the high watermark again."""
    await cluster.indices.put_settings(index=index, body={"index.blocks.read_only_allow_delete": None})


async def test_a_write_the_flood_stage_block_refuses_is_a_disk_failure_at_once_and_ping_names_the_index(
    open_store: OpenStore, cluster: AsyncOpenSearch, prefix: str
) -> None:
    store = await open_store(bulk=PATIENT_RETRIES)
    await store.write([make_event("before")])
    index = daily_index(prefix, "acme", DAY1.date())
    await block_writes(cluster, index)
    try:
        # With a thousand patient retries, only a write that gives up at once ends within the timeout.
        with pytest.raises(StoreDiskFailure, match=r"HTTP 429 cluster_block_exception: .*flood-stage watermark"):
            await asyncio.wait_for(store.write([make_event("blocked"), make_event("next-day", timestamp=DAY2)]), 20)
        with pytest.raises(
            StoreDiskFailure, match=rf"refuses writes to {index}: index\.blocks\.read_only_allow_delete is set"
        ):
            await store.ping()
        assert "before" in ids(await search_all(store)), "searches still answer"
    finally:
        await unblock_writes(cluster, index)

    await store.ping()
    await store.write([make_event("blocked"), make_event("next-day", timestamp=DAY2)])
    page = await search_all(store)
    assert (sorted(ids(page)), page.total) == (["before", "blocked", "next-day"], 3)


async def test_a_store_starts_while_its_index_is_blocked_and_updates_its_mapping_once_lifted(
    open_store: OpenStore, cluster: AsyncOpenSearch, prefix: str
) -> None:
    older = index_template(prefix, shards=1, replicas=0)["template"]
    del older["mappings"]["properties"]["field_numbers"]
    index = daily_index(prefix, "acme", DAY1.date())
    await cluster.indices.create(index=index, body=older)
    await block_writes(cluster, index)
    try:
        store = await open_store()  # the mapping update is refused by the block: it waits for the next write
        with pytest.raises(StoreDiskFailure, match=r"index\.blocks\.read_only_allow_delete is set"):
            await store.ping()
        with pytest.raises(StoreDiskFailure, match="cluster_block_exception"):
            await store.write([make_event("evt-1", fields={"status": 500})])
    finally:
        await unblock_writes(cluster, index)

    await store.write([make_event("evt-1", fields={"status": 500})])
    assert ids(await search_all(store, query="fields.status:>=500")) == ["evt-1"]


async def _create_unallocatable_index(cluster: AsyncOpenSearch, index: str) -> None:
    """The index exists (from the store's template) but its primary can be allocated nowhere: writes get 503."""
    await cluster.indices.create(
        index=index,
        body={"settings": {"index.routing.allocation.require._name": "no-such-node"}},
        params={"wait_for_active_shards": "0"},
    )


async def test_events_refused_with_503_are_retried_until_the_shard_is_back(
    open_store: OpenStore, cluster: AsyncOpenSearch, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=BULK_LOGGER)
    store = await open_store(bulk=PATIENT_RETRIES, request_timeout_seconds=2.0)
    index = daily_index(prefix, "acme", DAY1.date())
    await _create_unallocatable_index(cluster, index)

    write = asyncio.create_task(store.write([make_event("evt-1"), make_event("evt-2")]))
    try:
        await wait_for_retry_log(caplog, "503")
        await cluster.indices.put_settings(index=index, body={"index.routing.allocation.require._name": None})
        await asyncio.wait_for(write, timeout=60)
    finally:
        write.cancel()

    assert sorted(ids(await search_all(store))) == ["evt-1", "evt-2"]


async def test_events_still_refused_with_503_after_the_retries_make_the_write_unavailable(
    open_store: OpenStore, cluster: AsyncOpenSearch, prefix: str
) -> None:
    store = await open_store(bulk=FAST_RETRIES, request_timeout_seconds=2.0)
    await _create_unallocatable_index(cluster, daily_index(prefix, "acme", DAY1.date()))

    with pytest.raises(StoreUnavailable, match=r"after 2 retries: HTTP 503 unavailable_shards_exception"):
        await store.write([make_event("evt-1"), make_event("other-day", timestamp=DAY2)])

    assert ids(await search_all(store, start=DAY2)) == ["other-day"], "items of healthy indices were stored"
    with pytest.raises(StoreUnavailable, match="HTTP 503"):
        await search_all(store)  # never a partial answer


# --- a cluster that is not there -----------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the cluster until `stop`, which drops every connection: a cluster gone."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        self._writers += [client_writer, server_writer]

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


async def test_every_operation_fails_with_store_unavailable_once_the_cluster_is_gone(
    open_store: OpenStore, opensearch_url: str
) -> None:
    proxy = TcpProxy(opensearch_url)
    await proxy.start()
    store = await open_store(url=proxy.url, bulk=FAST_RETRIES)
    await store.write([make_event("evt-1")])
    assert ids(await search_all(store)) == ["evt-1"]

    await proxy.stop()

    with pytest.raises(StoreUnavailable, match="no answer"):
        await store.write([make_event("evt-2")])
    with pytest.raises(StoreUnavailable):
        await search_all(store)
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.drop_partitions_before("acme", DAY3.date())


async def test_start_fails_with_store_unavailable_when_no_cluster_answers(prefix: str) -> None:
    store = OpenSearchLogStore(ClusterOptions(urls=[UNREACHABLE_OPENSEARCH_URL]), index_prefix=prefix)

    with pytest.raises(StoreUnavailable, match="install its index template"):
        await store.start()
    with pytest.raises(StoreUnavailable, match="not started"):
        await store.ping()


# --- layout, retention and isolation -------------------------------------------------------------------


async def test_each_tenant_and_day_gets_its_own_index_with_the_template_mapping(
    open_store: OpenStore, cluster: AsyncOpenSearch, prefix: str
) -> None:
    store = await open_store()

    await store.write([make_event("a1"), make_event("a2", timestamp=DAY2), make_event("g1", tenant_id="globex")])

    indices = await cluster.indices.get(index=f"{prefix}-*")
    assert sorted(indices) == [f"{prefix}-acme-2024.03.09", f"{prefix}-acme-2024.03.10", f"{prefix}-globex-2024.03.09"]
    mapping = indices[f"{prefix}-acme-2024.03.09"]["mappings"]
    types = {name: spec.get("type") for name, spec in mapping["properties"].items()}
    assert types["fields"] == "flat_object"
    assert types["timestamp"] == "date_nanos"
    assert types["message"] == "text"
    assert types["service"] == types["level"] == types["host"] == types["trace_id"] == "keyword"
    assert types["field_numbers"] == "nested"
    settings = indices[f"{prefix}-acme-2024.03.09"]["settings"]["index"]
    assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("1", "0")


async def test_an_index_created_with_an_older_layout_takes_new_documents_after_a_restart(
    open_store: OpenStore, cluster: AsyncOpenSearch, prefix: str
) -> None:
    older = index_template(prefix, shards=1, replicas=0)["template"]
    for added_later in ("field_pairs", "field_numbers"):
        del older["mappings"]["properties"][added_later]
    await cluster.indices.create(index=daily_index(prefix, "acme", DAY1.date()), body=older)

    store = await open_store()
    await store.write([make_event("evt-1", fields={"user_id": "u1", "status": 500})])

    assert ids(await search_all(store, query="fields.user_id:u1 AND fields.status:>=500")) == ["evt-1"]


async def test_tenant_ids_that_are_not_valid_index_names_are_stored_apart(open_store: OpenStore) -> None:
    store = await open_store()
    tenants = ["Acme Corp/EU", "acme corp/eu", "acme_corp", "ACME"]

    await store.write([make_event(f"evt-{index}", tenant_id=tenant) for index, tenant in enumerate(tenants)])

    for index, tenant in enumerate(tenants):
        assert ids(await search_all(store, tenant)) == [f"evt-{index}"]


async def test_retention_drops_only_the_older_indices_of_that_tenant(open_store: OpenStore) -> None:
    store = await open_store()
    tenants = ["a", "a-b", "a-2024"]  # `a`'s index pattern also matches the others' names
    events = [
        make_event(f"{tenant}-{day:%d}", tenant_id=tenant, timestamp=day)
        for tenant in tenants
        for day in (DAY1, DAY2, DAY3)
    ]
    await store.write(events)

    dropped = await store.drop_partitions_before("a", DAY3.date())
    again = await store.drop_partitions_before("a", DAY3.date())

    assert dropped == ["a/2024-03-09", "a/2024-03-10"]
    assert again == []
    assert ids(await search_all(store, "a")) == ["a-11"]
    for other in ("a-b", "a-2024"):
        assert (await search_all(store, other)).total == 3
    assert await store.drop_partitions_before("nobody", date(2030, 1, 1)) == []


async def test_a_write_and_a_retention_run_over_more_index_names_than_one_request_line_holds(
    opensearch_url: str, prefix: str
) -> None:
    # The longest prefix and tenant id: 40 day indices of 116 bytes each, 4.7 KB of names, where OpenSearch
    # refuses a request line over 4 KiB (`too_long_http_line_exception`).
    long_prefix = prefix + "_" * (64 - len(prefix))
    tenant = "t" * 40
    days = [DAY1 + timedelta(days=offset) for offset in range(40)]
    store = OpenSearchLogStore(ClusterOptions(urls=[opensearch_url]), index_prefix=long_prefix)
    try:
        await store.start()
        await store.write(
            [make_event(f"evt-{number:02d}", tenant_id=tenant, timestamp=day) for number, day in enumerate(days)]
        )

        assert (await search_all(store, tenant)).total == 40  # refreshed, so searchable when `write` returned
        dropped = await store.drop_partitions_before(tenant, (days[-1] + timedelta(days=1)).date())
        assert dropped == [f"{tenant}/{day:%Y-%m-%d}" for day in days]
        assert (await search_all(store, tenant)).total == 0
    finally:
        with contextlib.suppress(StoreUnavailable):
            await store.close()
        delete_opensearch_indices(opensearch_url, long_prefix)


async def test_time_bounds_beyond_what_opensearch_can_store_still_answer(open_store: OpenStore) -> None:
    store = await open_store()
    await store.write([make_event("evt-1"), make_event("evt-2", timestamp=DAY2)])
    now = DAY3

    assert (await search_all(store, query="timestamp:<1960-01-01", now=now)).total == 0
    assert (await search_all(store, query="timestamp:>now-30000d", now=now)).total == 2
    assert (await search_all(store, query="timestamp:>2300-01-01", now=now)).total == 0
    far = await search_all(store, start=datetime(1900, 1, 1, tzinfo=UTC), end=datetime(3000, 1, 1, tzinfo=UTC))
    assert ids(far) == ["evt-2", "evt-1"]


async def test_the_numbers_in_fields_are_indexed_for_numeric_aggregations(
    open_store: OpenStore, cluster: AsyncOpenSearch, prefix: str
) -> None:
    store = await open_store()
    await store.write(
        [
            make_event("slow", fields={"duration_ms": 900, "tags": [1, "x", 2.5]}),
            make_event("fast", fields={"duration_ms": 12.5, "flag": True}),
            make_event("text", fields={"duration_ms": "n/a"}),
        ]
    )

    response = await cluster.search(
        index=f"{prefix}-*",
        body={
            "size": 0,
            "aggs": {
                "numbers": {
                    "nested": {"path": "field_numbers"},
                    "aggs": {
                        "duration": {
                            "filter": {"term": {"field_numbers.key": "duration_ms"}},
                            "aggs": {"stats": {"stats": {"field": "field_numbers.value"}}},
                        },
                        "keys": {"terms": {"field": "field_numbers.key"}},
                    },
                }
            },
        },
    )

    numbers = response["aggregations"]["numbers"]
    stats = numbers["duration"]["stats"]
    assert (stats["count"], stats["min"], stats["max"]) == (2, 12.5, 900.0)
    assert {bucket["key"]: bucket["doc_count"] for bucket in numbers["keys"]["buckets"]} == {
        "duration_ms": 2,
        "tags": 2,
    }
