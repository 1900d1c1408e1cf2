"""`PersonNotifier`: hand one message for one person, by one contact method, to the persisted delivery path.

Implemented by the notify role next to the channel senders (signed webhook, email over SMTP, chat webhook);
used by the escalation engine, which decides who is notified when and never sends anything itself.

Guarantees of an implementation:
- `notify` returns only once the delivery is persisted (it then survives a restart, is retried with the same
  policy as channel deliveries, passes the egress/SSRF policy at send time, and appears in the delivery log);
- the same `dedup_key` for the same tenant is persisted once: calling `notify` again with it is a no-op that
  returns the first delivery's id, so a retried escalation step never notifies twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import msgspec

from mintlog.domain.oncall_people import ContactMethod, Person

__all__ = ["PersonMessage", "PersonNotice", "PersonNotifier"]


class PersonMessage(msgspec.Struct, frozen=True, kw_only=True):
    """What a person is told about an incident. Links are absolute URLs (one-click acknowledge/resolve, API)."""

    incident_id: str
    title: str
    severity: str
    source: str
    """The alert rule's or monitor's name (or `manual`)."""
    summary: str = ""
    """A short plain-text log summary, when there is one."""
    acknowledge_url: str | None = None
    resolve_url: str | None = None
    incident_url: str | None = None
    triggered_at: datetime | None = None
    """When the incident was triggered (UTC); the rendered text shows it in the person's time zone."""


@dataclass(frozen=True, slots=True)
class PersonNotice:
    """One notification for `PersonNotifier.notify_many`: the arguments of one `notify` call."""

    tenant_id: str
    person: Person
    contact_method: ContactMethod
    message: PersonMessage
    dedup_key: str


class PersonNotifier(Protocol):
    """Persist one notification of one person by one of their contact methods."""

    async def notify(
        self,
        tenant_id: str,
        person: Person,
        contact_method: ContactMethod,
        message: PersonMessage,
        *,
        dedup_key: str,
    ) -> str:
        """Persist the delivery and return its id (the first one's, when `dedup_key` was seen before)."""
        ...

    async def notify_many(self, notices: Sequence[PersonNotice]) -> list[str]:
        """`notify` for each notice, persisted together (one transaction); their ids in the order given, with
        the same dedup rule (a `dedup_key` seen before, or twice here, gives the first delivery's id)."""
        ...
