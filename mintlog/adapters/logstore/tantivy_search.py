"""Search over a tenant's partitions: one page in `(timestamp, id)` order, a cursor, and a capped total.

Guarantees (the `LogStore.search` contract):

- Events come in exact `(timestamp, id)` order (microseconds, then id), newest first or oldest first.
- With `SearchQuery.after`, the page holds only events strictly after that position in the query's order,
  so paging with the last event of each page never skips or repeats an event, even while new events arrive.
- `total` counts the matches of the query ignoring `after`, exactly up to `total_cap`; beyond it the total
  is `total_cap` and marked as a lower bound. Counting stops once the cap is passed and the page is full,
  so a broad query over many days does not visit every partition.
- Partitions are visited in groups whose periods overlap (a month partition of old events and the day
  partitions of that month, `periods.visit_groups`): each partition of a group gives its first page, and
  the group's share of the page is the first of their merge in `(timestamp, id)` order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import tantivy

from mintlog.adapters.logstore.tantivy_partitions import Partition
from mintlog.adapters.logstore.tantivy_query import beyond_timestamp, timestamp_equals
from mintlog.adapters.logstore.tantivy_schema import decode_event
from mintlog.domain.events import LogEvent
from mintlog.errors import StoreUnavailable
from mintlog.ports.logstore import SearchAfter, SearchQuery, epoch_micros

__all__ = ["PageCollector", "match_count"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def match_count(result: tantivy.SearchResult) -> int:
    """The number of matches of a search run with `count=True` (the type stubs omit `count`)."""
    count: object = getattr(result, "count", None)
    return count if isinstance(count, int) else 0


def _day_of_micros(timestamp_us: int) -> date:
    return (_EPOCH + timedelta(microseconds=timestamp_us)).date()


@dataclass(slots=True)
class PageCollector:
    """Fills one page from partitions visited in the query's time order (newest first for `desc`).

    `query_all` matches the whole query (it counts the total); `query_page` additionally starts after the
    cursor. Call `visit` per group of overlapping partitions, in order, until `done`.
    """

    schema: tantivy.Schema
    query_all: tantivy.Query
    query_page: tantivy.Query
    size: int
    descending: bool
    after: SearchAfter | None
    total_cap: int
    found: list[LogEvent]
    total: int = 0

    @classmethod
    def start(cls, schema: tantivy.Schema, query_all: tantivy.Query, query: SearchQuery) -> PageCollector:
        descending = query.order == "desc"
        after = query.after
        query_page = query_all
        if after is not None:
            query_page = beyond_timestamp(schema, query_all, after.timestamp_us, descending=descending)
        return cls(
            schema=schema,
            query_all=query_all,
            query_page=query_page,
            size=max(query.size, 0),
            descending=descending,
            after=after,
            total_cap=max(query.total_cap, 0),
            found=[],
        )

    @property
    def counting(self) -> bool:
        return self.total <= self.total_cap

    @property
    def done(self) -> bool:
        """The page is full and the total is past the cap: later partitions cannot change the answer."""
        return len(self.found) >= self.size and not self.counting

    def visit(self, partitions: Sequence[Partition]) -> None:
        """Add the share of the page and of the total of one group of overlapping partitions (no event of
        a later group may come before one of this group in the query's order)."""
        wanted = self.size - len(self.found)
        shares = [self._share(partition, wanted) for partition in partitions]
        if len(shares) == 1:
            self.found.extend(shares[0])
            return
        merged = [event for share in shares for event in share]
        merged.sort(key=lambda event: (epoch_micros(event.timestamp), event.id), reverse=self.descending)
        self.found.extend(merged[:wanted])

    def _share(self, partition: Partition, wanted: int) -> list[LogEvent]:
        """Count this partition's matches into the total and return its first `wanted` events of the page."""
        searcher = partition.index.searcher()
        page_here = wanted > 0 and self._may_hold_page(partition)
        if self.after is None:
            events: list[LogEvent] = []
            if page_here:
                matches, events = _page_of(
                    self.schema, searcher, self.query_page, wanted, self.descending, partition.tenant_id
                )
            else:
                matches = match_count(searcher.search(self.query_all, 1, count=True)) if self.counting else 0
            self.total += matches
            return events
        if self.counting:
            self.total += match_count(searcher.search(self.query_all, 1, count=True))
        if not page_here:
            return []
        found: list[LogEvent] = []
        if partition.period.holds_day(_day_of_micros(self.after.timestamp_us)):
            found.extend(self._ties_after(searcher, wanted, partition.tenant_id))
        if len(found) < wanted:
            _matches, events = _page_of(
                self.schema, searcher, self.query_page, wanted - len(found), self.descending, partition.tenant_id
            )
            found.extend(events)
        return found

    def total_and_bound(self) -> tuple[int, bool]:
        """The total to report and whether it is a lower bound."""
        if self.total > self.total_cap:
            return self.total_cap, True
        return self.total, False

    def _may_hold_page(self, partition: Partition) -> bool:
        if self.after is None:
            return True
        after_day = _day_of_micros(self.after.timestamp_us)
        period = partition.period
        return period.start <= after_day if self.descending else period.last >= after_day

    def _ties_after(self, searcher: tantivy.Searcher, wanted: int, tenant_id: str) -> list[LogEvent]:
        """Events at exactly the cursor's time whose id comes after the cursor's, in the query's order.

        Tantivy has no range over text, so every tie is listed by its id (a fast field: no document is
        loaded) and filtered here; only the chosen ones are loaded.
        """
        after = self.after
        assert after is not None
        ties_query = timestamp_equals(self.schema, self.query_all, after.timestamp_us)
        ties = match_count(searcher.search(ties_query, 1, count=True))
        if ties == 0:
            return []
        order = tantivy.Order.Desc if self.descending else tantivy.Order.Asc
        hits = searcher.search(ties_query, ties, count=False, order_by_field="id", order=order).hits
        comes_after: Callable[[str], bool] = (
            (lambda event_id: event_id < after.event_id)
            if self.descending
            else (lambda event_id: event_id > after.event_id)
        )
        chosen = [address for event_id, address in hits if comes_after(str(event_id))][:wanted]
        return [_load_event(searcher, address, tenant_id, after.timestamp_us) for address in chosen]


def _page_of(
    schema: tantivy.Schema,
    searcher: tantivy.Searcher,
    query: tantivy.Query,
    wanted: int,
    descending: bool,
    tenant_id: str,
) -> tuple[int, list[LogEvent]]:
    """The number of matches of `query` in one partition and its first `wanted` events in `(timestamp, id)` order."""
    order = tantivy.Order.Desc if descending else tantivy.Order.Asc
    result = searcher.search(query, wanted, count=True, order_by_field="ts_us", order=order)
    matches = match_count(result)
    hits: list[tuple[int, tantivy.DocAddress]] = [(int(ts_us), address) for ts_us, address in result.hits]
    if matches > len(hits) and hits:
        # The page may end inside a run of equal timestamps, which Tantivy cuts arbitrarily: refill the
        # slots of that run in id order.
        boundary = hits[-1][0]
        hits = [hit for hit in hits if hit[0] != boundary]
        ties = searcher.search(
            timestamp_equals(schema, query, boundary),
            wanted - len(hits),
            count=False,
            order_by_field="id",
            order=order,
        )
        hits.extend((boundary, address) for _event_id, address in ties.hits)
    keyed = [(ts_us, _load_event(searcher, address, tenant_id, ts_us)) for ts_us, address in hits]
    keyed.sort(key=lambda item: (item[0], item[1].id), reverse=descending)
    return matches, [event for _ts_us, event in keyed]


def _load_event(searcher: tantivy.Searcher, address: tantivy.DocAddress, tenant_id: str, ts_us: int) -> LogEvent:
    """The event of one document, given its partition's tenant and its `ts_us` (see `decode_event`)."""
    stored = searcher.doc(address).get_first("event")
    if not isinstance(stored, bytes):
        raise StoreUnavailable("a stored document has no event payload")
    return decode_event(stored, tenant_id=tenant_id, ts_us=ts_us)
