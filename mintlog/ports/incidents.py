"""The incidents port: incidents, their append-only timelines (which double as the outbox of incident events),
and silences."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mintlog.domain.alerting import IncidentStatus
from mintlog.domain.incidents import AlertPlan, EntryDraft, Incident, TimelineEntry
from mintlog.domain.silences import Silence, SilenceState

__all__ = ["AppliedChange", "IncidentStore", "IncidentVersion", "NewEntry"]

IncidentVersion = tuple[str, datetime]
"""An incident's (status, updated_at): `IncidentStore.incident_versions`."""


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """An incident as it stands after a change, and the timeline entry that records the change.

    `replayed` is true when the entry already existed (a redelivered alert event): nothing was written, and
    the caller only publishes the entry's event again (the bus's duplicate window drops it if it was out).
    """

    incident: Incident
    entry: TimelineEntry
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A timeline entry to append to the tenant's incident (`IncidentStore.append_entries`)."""

    tenant_id: str
    incident_id: str
    draft: EntryDraft


class IncidentStore(Protocol):
    """Incidents, timelines and silences in the metadata database.

    Every method raises `DatabaseUnavailable` when the database cannot be reached, and is durable when it
    returns. Every lookup takes the tenant id: another tenant's ids are never found. Every change writes its
    timeline entry in the same transaction, with `published_at` null until `mark_published`.
    """

    async def create_incident(self, incident: Incident, entry: EntryDraft) -> AppliedChange:
        """Insert an incident opened over the API (no dedup key needed) with its `triggered` entry."""
        ...

    async def apply_alert(
        self,
        tenant_id: str,
        dedup_key: str,
        source_id: str,
        plan: Callable[[Incident | None], AlertPlan | None],
    ) -> AppliedChange | None:
        """Apply what an alert event does to the incidents of `dedup_key`, exactly once per `source_id`.

        When an entry with `source_id` exists, it is returned with `replayed` true and nothing is written.
        Otherwise `plan` gets the open (not resolved) incident of the dedup key, or None, and its answer is
        applied in one transaction: open a new incident, or append to (and maybe resolve) the open one. None
        when `plan` answers None. Concurrent calls for one dedup key open at most one incident: a call that
        loses the race calls `plan` again with the winner's incident (so it appends instead). `plan` must be
        pure: it may be called several times.
        """
        ...

    async def get_incident(self, tenant_id: str, incident_id: str) -> Incident | None:
        """The tenant's incident, or None."""
        ...

    async def get_incidents(self, keys: Sequence[tuple[str, str]]) -> Sequence[Incident]:
        """The incidents of these (tenant id, incident id) pairs that exist, in one read; a pair whose incident
        is another tenant's, or absent, has none."""
        ...

    async def incident_versions(self, keys: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], IncidentVersion]:
        """The status and `updated_at` of these incidents that exist, in one read of two columns. Every change to
        an incident moves its `updated_at` forward, so an unchanged version is an unchanged incident."""
        ...

    async def list_incidents(
        self,
        tenant_id: str,
        *,
        statuses: Sequence[IncidentStatus] | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[Incident]:
        """Up to `limit` of the tenant's incidents with one of `statuses` (all when None), newest first (by
        `created_at`, then id), strictly after the (created_at, id) `before` in that order."""
        ...

    async def timeline(self, tenant_id: str, incident_id: str) -> Sequence[TimelineEntry]:
        """The incident's timeline, oldest first (by `occurred_at`, then id)."""
        ...

    async def change_status(
        self,
        tenant_id: str,
        incident_id: str,
        target: IncidentStatus,
        entry: EntryDraft,
    ) -> AppliedChange | None:
        """Move the incident to `target` (recording who and when) with `entry`; None when it is not found.

        Raises `Conflict` (`invalid_transition`) unless the move is allowed from its current status. Atomic:
        of two concurrent moves from one status, one wins and the other gets its `Conflict`.
        """
        ...

    async def append_entry(self, tenant_id: str, incident_id: str, entry: EntryDraft) -> AppliedChange | None:
        """Append `entry` (a comment) without changing the status; None when the incident is not found."""
        ...

    async def append_entries(self, entries: Sequence[NewEntry]) -> list[str]:
        """Append many entries (comments) in one transaction and return the ids of those written.

        Idempotent: an entry whose id (or tenant and `source_id`) exists is skipped, as is one of an incident
        not found. The entries of one incident are stamped in the order given, each strictly after the one
        before it and the first strictly after the incident's `updated_at` (`EntryDraft.after`), and the
        incident's `updated_at` becomes its last entry's time, as `append_entry` does for one.
        """
        ...

    async def unpublished_entries(self, *, occurred_before: datetime, limit: int) -> Sequence[TimelineEntry]:
        """Entries of every tenant whose event has not been marked published and that occurred before
        `occurred_before`, oldest first."""
        ...

    async def mark_published(self, entry_ids: Sequence[str], *, published_at: datetime) -> None:
        """Record that these entries' events reached the bus (idempotent)."""
        ...

    async def create_silence(self, silence: Silence) -> Silence:
        """Insert a silence."""
        ...

    async def get_silence(self, tenant_id: str, silence_id: str) -> Silence | None:
        """The tenant's silence, or None."""
        ...

    async def list_silences(
        self,
        tenant_id: str,
        *,
        now: datetime,
        states: Sequence[SilenceState] | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[Silence]:
        """Up to `limit` of the tenant's silences in one of `states` at `now` (all when None), newest first (by
        `created_at`, then id), strictly after `before` in that order."""
        ...

    async def active_silences(self, tenant_id: str, *, now: datetime) -> Sequence[Silence]:
        """The tenant's silences active at `now`."""
        ...

    async def expire_silence(self, tenant_id: str, silence_id: str, *, now: datetime) -> Silence | None:
        """End the silence at `now` unless it already ended (idempotent); None when it is not found."""
        ...
