"""`OnCallDirectory`: the escalation engine's read-only view of people and schedules.

Implemented over the metadata database by the people/schedules adapter; the escalation engine depends on this
port only. Another tenant's person or schedule is never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from mintlog.domain.oncall_people import Person

__all__ = ["OnCallDirectory"]


class OnCallDirectory(Protocol):
    """Who a tenant's people are and who is on call on a schedule at an instant."""

    async def get_person(self, tenant_id: str, person_id: str) -> Person | None:
        """The person, or None when the tenant has no such person."""
        ...

    async def has_schedule(self, tenant_id: str, schedule_id: str) -> bool:
        """Whether the tenant has the schedule (an empty one included): what `people_on_call` cannot tell."""
        ...

    async def people_on_call(self, tenant_id: str, schedule_id: str, at: datetime) -> Sequence[Person]:
        """Whoever is on call on the schedule at `at` (final shifts: layers, restrictions and overrides
        applied); empty when nobody is, or when the tenant has no such schedule."""
        ...
