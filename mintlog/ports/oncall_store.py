"""`OnCallStore`: people, schedules, overrides and calendar-feed tokens of every tenant.

It is also the `OnCallDirectory` the escalation engine reads. Another tenant's object is never returned nor
changed: every method takes the tenant and a wrong one reads as "not found".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from mintlog.domain.oncall_people import Person
from mintlog.domain.oncall_schedule import OverrideSpan, ScheduleSpec
from mintlog.ports.oncall import OnCallDirectory

__all__ = ["OnCallStore", "Override", "Schedule"]


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """A stored schedule; `ical_token_at` is when its calendar-feed token was minted (None: no feed)."""

    id: str
    tenant_id: str
    spec: ScheduleSpec
    created_at: datetime
    updated_at: datetime
    ical_token_at: datetime | None = None


class Override(msgspec.Struct, frozen=True, kw_only=True):
    """`person_id` covers `[start, end)` on the schedule; among overlapping overrides the last created wins."""

    id: str
    tenant_id: str
    schedule_id: str
    person_id: str
    start: datetime
    end: datetime
    created_at: datetime
    note: str = ""

    def span(self) -> OverrideSpan:
        """What rendering needs of this override."""
        return OverrideSpan(
            person_id=self.person_id, start=self.start, end=self.end, created_at=self.created_at, override_id=self.id
        )


class OnCallStore(OnCallDirectory, Protocol):
    """The metadata database's on-call tables. Lists are ordered by `(created_at, id)` (overrides: by `start`)."""

    async def create_person(self, person: Person, *, max_per_tenant: int) -> Person:
        """Store a new person; `Conflict` (`too_many_people`) when the tenant already has `max_per_tenant`."""
        ...

    async def list_people(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[Person]:
        """The tenant's people, oldest first, after the `(created_at, id)` cursor."""
        ...

    async def people(self, tenant_id: str, person_ids: Sequence[str]) -> Mapping[str, Person]:
        """The tenant's people among `person_ids`, by id (unknown ids are left out)."""
        ...

    async def replace_person(self, person: Person) -> Person | None:
        """Replace the stored person of `person.tenant_id` with that id; None when there is none."""
        ...

    async def delete_person(self, tenant_id: str, person_id: str) -> bool:
        """Delete the person; False when not found. `Conflict` (`person_in_use`, `extra.schedules`: the ids)
        while a schedule's layer or override names them: nothing is deleted then."""
        ...

    async def create_schedule(self, schedule: Schedule, *, max_per_tenant: int) -> Schedule:
        """Store a new schedule (its participants must be the tenant's people, checked in the same transaction:
        `Conflict` `person_not_found` otherwise); `Conflict` `too_many_schedules` beyond `max_per_tenant`."""
        ...

    async def get_schedule(self, tenant_id: str, schedule_id: str) -> Schedule | None:
        """The schedule, or None."""
        ...

    async def list_schedules(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[Schedule]:
        """The tenant's schedules, oldest first, after the `(created_at, id)` cursor."""
        ...

    async def replace_schedule(self, schedule: Schedule) -> Schedule | None:
        """Replace the spec of the tenant's schedule with that id (same participant check as create); None when
        there is none. Its overrides and feed token are kept."""
        ...

    async def delete_schedule(self, tenant_id: str, schedule_id: str) -> bool:
        """Delete the schedule with its overrides and feed token; False when not found."""
        ...

    async def create_override(self, override: Override, *, max_per_schedule: int) -> Override:
        """Store a new override; `Conflict` `too_many_overrides` beyond `max_per_schedule`."""
        ...

    async def get_override(self, tenant_id: str, schedule_id: str, override_id: str) -> Override | None:
        """The override of that schedule, or None."""
        ...

    async def delete_override(self, tenant_id: str, schedule_id: str, override_id: str) -> bool:
        """Delete the override; False when not found."""
        ...

    async def overrides_between(
        self,
        tenant_id: str,
        schedule_id: str,
        *,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
    ) -> Sequence[Override]:
        """The schedule's overrides that meet `[start, end)`, by `(start, id)`, after that cursor."""
        ...

    async def set_ical_token(self, tenant_id: str, schedule_id: str, token_hash: str | None, at: datetime) -> bool:
        """Make `token_hash` (a SHA-256 hex digest) the schedule's only feed token, or remove the token (None);
        False when there is no such schedule."""
        ...

    async def schedule_by_ical_token(self, token_hash: str) -> Schedule | None:
        """The schedule whose feed token has this hash, of an active tenant; None otherwise."""
        ...
