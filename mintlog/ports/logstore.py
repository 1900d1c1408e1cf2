"""The log store port: idempotent batch writes and tenant-scoped search over normalized events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from mintlog.domain.events import LogEvent
from mintlog.query import Node
from mintlog.query.ast import MatchAll

__all__ = ["LogStore", "SearchPage", "SearchQuery"]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to find, always inside one tenant.

    `node` is a parsed query-language query (`mintlog.query.parse`, possibly AND-ed with structured filters
    turned into nodes; see docs/query-language.md); the default matches every event. `now` is the instant
    relative times in `node` (`timestamp:>now-1h`) are resolved against: one instant for the whole request.
    `start` is inclusive and `end` exclusive; they apply on top of `node`.
    """

    tenant_id: str
    node: Node = field(default_factory=MatchAll)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    start: datetime | None = None
    end: datetime | None = None
    size: int = 50
    order: Literal["desc", "asc"] = "desc"


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results, ordered by (timestamp, id) in the query's order.

    `total` counts all matches; when `total_is_lower_bound` is true the store stopped counting at a cap.
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

        Raises `QuerySyntaxError` when a time bound of `query.node` cannot be resolved against `query.now`.
        """
        ...

    async def ping(self) -> None:
        """Return when the store can serve; raise `StoreUnavailable` otherwise."""
        ...
