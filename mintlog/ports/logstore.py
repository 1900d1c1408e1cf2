"""The log store port: idempotent batch writes and tenant-scoped search over normalized events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol

from mintlog.domain.events import LogEvent
from mintlog.domain.tenants import RetentionBasis
from mintlog.ports.aggregation import AggregateQuery, AggregateResult
from mintlog.query import Node
from mintlog.query.ast import MatchAll

__all__ = ["DEFAULT_TOTAL_CAP", "LogStore", "SearchAfter", "SearchPage", "SearchQuery"]

DEFAULT_TOTAL_CAP = 10_000
"""Matches counted exactly before a total becomes a lower bound (OpenSearch's `track_total_hits` default)."""


@dataclass(frozen=True, slots=True, order=True)
class SearchAfter:
    """A position in the `(timestamp, id)` order of events: a page continues strictly after it.

    `timestamp_us` is the event time in microseconds since the Unix epoch (UTC). "After" follows the
    query's order: older events (or equal time and a smaller id) for `desc`, newer ones for `asc`. Events
    that arrive later never shift a cursor: paging with it yields no gaps and no duplicates.
    """

    timestamp_us: int
    event_id: str

    @classmethod
    def of(cls, event: LogEvent) -> SearchAfter:
        """The position of `event` (a page continues after it)."""
        return cls(timestamp_us=epoch_micros(event.timestamp), event_id=event.id)


def epoch_micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01T00:00:00Z, exactly; a naive datetime is taken to be UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _ONE_MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to find, always inside one tenant.

    `node` is a parsed query-language query (`mintlog.query.parse`, possibly AND-ed with structured filters
    turned into nodes; see docs/query-language.md); the default matches every event. `now` is the instant
    relative times in `node` (`timestamp:>now-1h`) are resolved against: one instant for the whole request.
    `start` is inclusive and `end` exclusive; they apply on top of `node`. `after` (optional) starts the
    page strictly after a position in the query's order. `total_cap` bounds counting: when more events
    match, the page reports `total == total_cap` and `total_is_lower_bound`.
    """

    tenant_id: str
    node: Node = field(default_factory=MatchAll)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    start: datetime | None = None
    end: datetime | None = None
    size: int = 50
    order: Literal["desc", "asc"] = "desc"
    after: SearchAfter | None = None
    total_cap: int = DEFAULT_TOTAL_CAP


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results, ordered by (timestamp, id) in the query's order.

    `total` counts every match of the query, ignoring `after` (so it is the same on every page), exactly up
    to the query's `total_cap`; above it `total == total_cap` and `total_is_lower_bound` is true.
    """

    events: list[LogEvent]
    total: int
    total_is_lower_bound: bool = False
    took_ms: float = 0.0
    partitions: list[str] = field(default_factory=lambda: [])


class LogStore(Protocol):
    """Where normalized events live. Implemented by Tantivy (embedded) and OpenSearch (production)."""

    async def start(self) -> None:
        """Open or create what the store needs (idempotent)."""
        ...

    async def close(self) -> None:
        """Commit nothing new; release files, threads and connections."""
        ...

    async def write(self, events: Sequence[LogEvent]) -> None:
        """Store `events` durably and make them searchable before returning.

        Idempotent by `(tenant_id, id)`: writing an event that is already stored does not create a second
        copy. Events of several tenants and days may be mixed. Raises `StoreUnavailable` on failure, in
        which case none, some or all events may be stored and the caller retries the whole batch, and
        `ValueError` for an event that can never be stored (retrying will not help: dead-letter it).
        """
        ...

    async def search(self, query: SearchQuery) -> SearchPage:
        """Events of `query.tenant_id` only, matching `query.node` within `[start, end)`, newest first by default.

        The order is exact over every partition (a month partition of old events overlaps day partitions).
        `SearchPage.partitions` names the partitions searched, as `drop_partitions_before` names them.
        Raises `QuerySyntaxError` when a time bound of `query.node` cannot be resolved against `query.now`.
        """
        ...

    async def aggregate(self, query: AggregateQuery) -> AggregateResult:
        """Group and summarize the events of `query.tenant_id` matching `query.node` within `[start, end)`.

        The shape and its guarantees are in `mintlog.ports.aggregation`. Raises `QuerySyntaxError` like
        `search`, and `StoreUnavailable` when the store fails.
        """
        ...

    async def drop_partitions_before(
        self, tenant_id: str, day: date, *, basis: RetentionBasis = "event_time"
    ) -> list[str]:
        """Delete every partition of `tenant_id` all of whose events are before `day` by `basis`.

        Both stores partition a tenant's events by UTC day, and events that arrived more than two days late
        by UTC month of their time and month of their arrival (`mintlog.adapters.logstore.periods`). With
        `basis="event_time"` a partition goes when all its event times are before `day`; with
        `basis="received_at"`, when all its events were received before `day`. A partition that may hold an
        event on or after `day` by `basis` is kept whole, so no such event is ever deleted; other tenants are
        never touched. Returns what was dropped, oldest first, as `{tenant_id}/{YYYY-MM-DD}` (day partition)
        or `{tenant_id}/{YYYY-MM}@{YYYY-MM}` (month partition: event month @ receive month). Raises
        `StoreUnavailable` when the store fails (retry later: dropping is idempotent).
        """
        ...

    async def ping(self) -> None:
        """Return when the store can serve; raise `StoreUnavailable` otherwise."""
        ...
