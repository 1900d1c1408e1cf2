"""The log store port: idempotent batch writes and tenant-scoped search over normalized events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from mintlog.domain.events import LogEvent

__all__ = ["LogStore", "SearchPage", "SearchQuery"]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to find, always inside one tenant.

    `text` is matched against `message`: every word must occur (an empty or absent text matches all).
    The other filters are exact matches; several values of one filter are alternatives (OR), different
    filters all apply (AND). `start` is inclusive and `end` exclusive.
    """

    tenant_id: str
    text: str | None = None
    levels: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
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
        """Events of `query.tenant_id` only, matching every filter, newest first by default."""
        ...

    async def ping(self) -> None:
        """Return when the store can serve; raise `StoreUnavailable` otherwise."""
        ...
