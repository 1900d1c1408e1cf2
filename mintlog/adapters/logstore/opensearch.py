"""`OpenSearchLogStore`: the production `LogStore` on an OpenSearch 2.x cluster (`opensearch-py` async).

Layout (`opensearch_layout`): one index per tenant and UTC day, `{prefix}-{tenant}-YYYY.MM.DD`, and for
events that arrived more than two days late one per tenant, event month and receive month,
`{prefix}-{tenant}-YYYY.MM@YYYY.MM` (`periods`), created on first write from the index template `{prefix}`
that `start` installs. Guarantees:

- `write` bulk-creates every event with its id as `_id` in the index of its period (`opensearch_bulk`): an
  event already stored is never stored twice (409 counts as done); 429/5xx and timeouts are retried with
  exponential backoff, then `StoreUnavailable`; a write refused by a block (the flood-stage
  `read_only_allow_delete` block of a full disk, `opensearch_blocks`) raises `StoreDiskFailure` at once, an
  outage retried until the block is lifted, never a rejection; an event OpenSearch refuses for good (other
  4xx, or one that cannot be encoded) raises `EventsRejectedError` (a `ValueError`) naming it and the
  reason, after the rest of the batch was stored. Before `write` returns, every index it wrote to is refreshed, so the
  events are searchable. (An explicit refresh answers in tens of milliseconds for a 500-event batch on
  the test node; the bulk's `refresh=wait_for` waits for the next periodic refresh, about a second.) The indices are
  refreshed in requests of at most `MAX_NAMES_BYTES` of names (`name_groups`), so a write spanning many
  tenants' indices is not refused for its request line.
- `search` asks only the tenant's indices whose day can hold a match (`opensearch_search`) and filters
  on the tenant id as well, orders by `(timestamp, id)` exactly (microseconds), pages with
  `search_after`, and counts exactly up to `total_cap`. No index in range is an empty page.
- `aggregate` runs native aggregations over the same indices with the same filters
  (`opensearch_aggregate`), exact counts across days, the answer shaped like the Tantivy store's.
- `drop_partitions_before` deletes the tenant's indices all of whose events are past a day by the tenant's
  retention basis (`periods.expired`), by explicit name.
- Timestamps must lie between 1970-01-01 and 2262-04-11 (OpenSearch's `date_nanos`); an event outside is
  refused like any other 4xx (`mapper_parsing_exception`), where the Tantivy store would keep it.
- `ping` fails (`StoreDiskFailure`) while one of the store's indices carries the flood-stage block, so
  `/readyz` names `store` until OpenSearch (or an operator) lifts it.
- Every vendor error becomes `StoreUnavailable` (or `EventsRejectedError` per event) at this boundary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import msgspec
from opensearchpy import AsyncOpenSearch

from mintlog.adapters.logstore.days import day_range
from mintlog.adapters.logstore.opensearch_aggregate import aggregate_indices, check_aggregate_query
from mintlog.adapters.logstore.opensearch_blocks import flood_stage_failure, flood_stage_indices
from mintlog.adapters.logstore.opensearch_bulk import (
    BulkItem,
    BulkPolicy,
    EventsRejectedError,
    Rejection,
    write_bulk,
)
from mintlog.adapters.logstore.opensearch_client import (
    ClusterOptions,
    new_client,
    search_when_shards_started,
    translate_errors,
)
from mintlog.adapters.logstore.opensearch_documents import EventEncodingError, encode_document
from mintlog.adapters.logstore.opensearch_layout import (
    DEFAULT_INDEX_PREFIX,
    MAX_INDEX_NAME_BYTES,
    index_template,
    name_groups,
    partition_index,
    partition_name,
    tenant_index_base,
    tenant_periods,
    validate_index_prefix,
)
from mintlog.adapters.logstore.opensearch_search import (
    FILTER_PATH,
    index_expression,
    read_page,
    search_body,
)
from mintlog.adapters.logstore.periods import Period, expired, overlapping, period_of
from mintlog.domain.events import LogEvent
from mintlog.domain.tenants import RetentionBasis
from mintlog.errors import StoreDiskFailure, StoreUnavailable
from mintlog.ports.aggregation import AggregateQuery, AggregateResult
from mintlog.ports.logstore import SearchPage, SearchQuery
from mintlog.query.opensearch import to_opensearch

__all__ = ["BulkPolicy", "ClusterOptions", "EventsRejectedError", "OpenSearchLogStore"]

logger = logging.getLogger(__name__)

_DAY_SUFFIX_BYTES = len("-YYYY.MM.DD")
_IGNORE_UNAVAILABLE = {"ignore_unavailable": "true"}


class _Target(msgspec.Struct):
    index: str = msgspec.field(name="_index")
    id: str = msgspec.field(name="_id")


class _CreateAction(msgspec.Struct):
    create: _Target


class _ResolvedIndex(msgspec.Struct):
    name: str


class _Resolved(msgspec.Struct):
    indices: list[_ResolvedIndex] = []


_action_encoder = msgspec.json.Encoder()


class OpenSearchLogStore:
    """The log store on an OpenSearch cluster (see the module docstring for layout and guarantees)."""

    def __init__(
        self,
        cluster: ClusterOptions,
        *,
        index_prefix: str = DEFAULT_INDEX_PREFIX,
        shards: int = 1,
        replicas: int = 0,
        bulk: BulkPolicy | None = None,
    ) -> None:
        """Raises `ValueError` for an invalid index prefix. Nothing connects before `start`."""
        self._cluster = cluster
        self._prefix = validate_index_prefix(index_prefix)
        self._shards = shards
        self._replicas = replicas
        self._bulk = bulk or BulkPolicy()
        self._client: AsyncOpenSearch | None = None
        self._mappings_pending = False

    @property
    def index_prefix(self) -> str:
        """The prefix of every index and the name of the index template."""
        return self._prefix

    async def start(self) -> None:
        """Connect, install (or update) the index template and add its fields to existing indices.

        Idempotent. New fields of the current layout are added to the mapping of every open
        `{prefix}-*` index (mappings only grow), so today's index keeps accepting documents after an
        upgrade; while an index is blocked (flood stage) that is left to the next `write`, and the store
        starts anyway. `StoreUnavailable` if the cluster fails or an existing mapping conflicts with the layout.
        """
        if self._client is not None:
            return
        client = new_client(self._cluster)
        try:
            with translate_errors("install its index template"):
                await client.indices.put_index_template(name=self._prefix, body=self._template())
            try:
                await self._update_mappings(client)
            except StoreDiskFailure as exc:
                logger.warning("%s; the mappings are updated before the next write", exc)
        except BaseException:
            await client.close()
            raise
        self._client = client

    def _template(self) -> dict[str, Any]:
        return index_template(self._prefix, shards=self._shards, replicas=self._replicas)

    async def _update_mappings(self, client: AsyncOpenSearch) -> None:
        """Add the layout's fields to every open index of the store; until that succeeded, `write` calls this
        first. `StoreDiskFailure` while an index is blocked."""
        self._mappings_pending = True
        with translate_errors("update the mapping of its existing indices"):
            await client.indices.put_mapping(
                index=f"{self._prefix}-*",
                body={"properties": self._template()["template"]["mappings"]["properties"]},
                params={"allow_no_indices": "true", "expand_wildcards": "open"},
            )
        self._mappings_pending = False

    async def close(self) -> None:
        """Close the connections. Idempotent."""
        client, self._client = self._client, None
        if client is not None:
            with translate_errors("close its connections"):
                await client.close()

    def _connected(self) -> AsyncOpenSearch:
        if self._client is None:
            raise StoreUnavailable("opensearch store is not started")
        return self._client

    async def ping(self) -> None:
        """Return when the cluster answers its health endpoint (any status) and no index of the store carries the
        flood-stage block; else `StoreUnavailable`, or `StoreDiskFailure` naming the blocked indices."""
        client = self._connected()
        with translate_errors("reach the cluster"):
            await client.cluster.health()
        blocked = await flood_stage_indices(client.indices, f"{self._prefix}-*")
        if blocked:
            raise flood_stage_failure(blocked)

    # --- writing -------------------------------------------------------------------------------------

    async def write(self, events: Sequence[LogEvent]) -> None:
        """Create every event in its daily index, then refresh those indices (see the module docstring).

        Raises `StoreUnavailable` (retry the whole batch; some events may be stored), `StoreDiskFailure` while
        the cluster refuses writes with a block (retry until it is lifted), and `EventsRejectedError` for
        events that can never be stored (the others are stored and searchable).
        """
        if not events:
            return
        client = self._connected()
        if self._mappings_pending:
            await self._update_mappings(client)
        items: list[BulkItem] = []
        rejections: list[Rejection] = []
        seen: set[tuple[str, str]] = set()
        index_names: dict[tuple[str, Period], str] = {}
        for event in events:
            if not event.tenant_id:
                rejections.append(Rejection(event.id, event.tenant_id, "the event has an empty tenant_id"))
                continue
            try:
                document = encode_document(event)
            except EventEncodingError as exc:
                rejections.append(Rejection(event.id, event.tenant_id, str(exc)))
                continue
            partition = (event.tenant_id, period_of(event.timestamp, event.received_at))
            index = index_names.get(partition)
            if index is None:
                index = index_names[partition] = partition_index(self._prefix, *partition)
            if (index, event.id) in seen:
                continue
            seen.add((index, event.id))
            action = _action_encoder.encode(_CreateAction(_Target(index, event.id)))
            items.append(BulkItem(event=event, index=index, lines=b"%b\n%b\n" % (action, document)))
        outcome = await write_bulk(
            client,
            items,
            self._bulk,
            request_timeout_seconds=self._cluster.request_timeout_seconds,
        )
        for expression in name_groups(sorted(outcome.indices)):
            with translate_errors("refresh after writing"):
                await client.indices.refresh(index=expression, params=_IGNORE_UNAVAILABLE)
        rejections.extend(outcome.rejections)
        if rejections:
            raise EventsRejectedError(rejections)

    # --- searching -----------------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchPage:
        """Events of `query.tenant_id` matching `query.node` in `[start, end)`, ordered by `(timestamp, id)`.

        Raises `QuerySyntaxError` when a time bound of the node cannot be resolved against `query.now`,
        `StoreUnavailable` when the cluster fails.
        """
        started = time.perf_counter()
        client = self._connected()
        first_day, last_day = day_range(query)
        if not query.tenant_id or (first_day is not None and last_day is not None and first_day > last_day):
            return SearchPage(events=[], total=0, took_ms=_elapsed_ms(started))
        node_dsl = to_opensearch(query.node, query.now)
        base = tenant_index_base(self._prefix, query.tenant_id)
        existing = await self._tenant_indices(client, base, expand_wildcards="open")
        periods = overlapping(existing, first_day, last_day)
        if not periods:
            return SearchPage(events=[], total=0, took_ms=_elapsed_ms(started))
        with translate_errors("search"):
            response = await search_when_shards_started(
                client,
                index=index_expression(base, periods, existing),
                body=search_body(query, node_dsl),
                params={
                    "ignore_unavailable": "true",
                    "allow_no_indices": "true",
                    "allow_partial_search_results": "false",
                    "filter_path": FILTER_PATH,
                },
            )
        page = read_page(response, query.total_cap)
        visited = reversed(periods) if query.order == "desc" else iter(periods)
        return SearchPage(
            events=page.events,
            total=page.total,
            total_is_lower_bound=page.total_is_lower_bound,
            took_ms=_elapsed_ms(started),
            partitions=[partition_name(query.tenant_id, period) for period in visited],
        )

    async def _tenant_indices(self, client: AsyncOpenSearch, base: str, *, expand_wildcards: str) -> dict[Period, str]:
        """The tenant's indices by period (only names that are exactly `{base}-YYYY.MM.DD` or
        `{base}-YYYY.MM@YYYY.MM`)."""
        if len(base.encode()) + _DAY_SUFFIX_BYTES > MAX_INDEX_NAME_BYTES:
            return {}  # no such index can exist
        with translate_errors("list indices"):
            response = await client.indices.resolve_index(
                name=f"{base}-*", params={"expand_wildcards": expand_wildcards}
            )
        try:
            resolved = msgspec.convert(response, _Resolved)
        except msgspec.ValidationError as exc:
            raise StoreUnavailable(f"opensearch store got an unexpected index list: {exc}") from exc
        return tenant_periods(base, (index.name for index in resolved.indices))

    # --- aggregations --------------------------------------------------------------------------------

    async def aggregate(self, query: AggregateQuery) -> AggregateResult:
        """Group and summarize the events of `query.tenant_id` (`opensearch_aggregate`; shape in the port).

        Raises `ValueError` for a group or metric on a field the port does not allow, `QuerySyntaxError`
        when a time bound of the node cannot be resolved, `BadRequest` (`too_many_buckets`) when more than
        `MAX_TRACKED_BUCKETS` distinct buckets would be merged, `StoreUnavailable` when the cluster fails.
        """
        client = self._connected()
        check_aggregate_query(query)
        first_day, last_day = day_range(
            SearchQuery(tenant_id=query.tenant_id, node=query.node, now=query.now, start=query.start, end=query.end)
        )
        node_dsl = to_opensearch(query.node, query.now)
        days: list[date] = []  # the first and last day of the periods in range
        index = ""
        if query.tenant_id and (first_day is None or last_day is None or first_day <= last_day):
            base = tenant_index_base(self._prefix, query.tenant_id)
            existing = await self._tenant_indices(client, base, expand_wildcards="open")
            periods = overlapping(existing, first_day, last_day)
            if periods:
                days = [min(period.start for period in periods), max(period.last for period in periods)]
            index = index_expression(base, periods, existing)
        return await aggregate_indices(client, index, days, query, node_dsl)

    # --- retention -----------------------------------------------------------------------------------

    async def drop_partitions_before(
        self, tenant_id: str, day: date, *, basis: RetentionBasis = "event_time"
    ) -> list[str]:
        """Delete every index of `tenant_id` all of whose events are before `day` by `basis`
        (`periods.expired`); an index that may hold a later event is kept whole.

        Indices are deleted by their exact names, listed from the tenant's own (open or closed) indices:
        never another tenant's, even one whose id starts like this one. Returns `{tenant_id}/{period name}`
        of each, oldest first. Idempotent; `StoreUnavailable` when the cluster fails.
        """
        client = self._connected()
        if not tenant_id:
            return []
        base = tenant_index_base(self._prefix, tenant_id)
        existing = await self._tenant_indices(client, base, expand_wildcards="open,closed")
        old = sorted((period for period in existing if expired(period, day, basis)), key=lambda period: period.sort_key)
        for names in name_groups(existing[period] for period in old):
            with translate_errors("delete old indices"):
                await client.indices.delete(index=names, params=_IGNORE_UNAVAILABLE)
        if old:
            logger.info("dropped %d index(es) of tenant %s before %s by %s", len(old), tenant_id, day, basis)
        return [partition_name(tenant_id, period) for period in old]


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
