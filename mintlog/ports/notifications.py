"""The notifications port: channels (webhook, email, chat webhook), the deliveries of incident events to
them, and the deliveries of messages to people."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from mintlog.domain.channels import Channel, ChannelChanges, Delivery, DeliveryFilter, DeliveryOutcome

__all__ = ["NotificationStore"]


class NotificationStore(Protocol):
    """Channels and deliveries in the metadata database (SQLite or PostgreSQL).

    Every method raises `DatabaseUnavailable` when the database cannot be reached; a write is durable when it
    returns. Lookups take the tenant id, so one tenant's ids never reach another's rows (the sender's claim
    and record methods are the exception: they work across tenants on delivery ids they were handed).
    """

    async def create_channel(self, channel: Channel) -> Channel:
        """Insert a channel; raises `Conflict` when its id exists."""
        ...

    async def get_channel(self, tenant_id: str, channel_id: str) -> Channel | None:
        """The tenant's channel (with its secret), or None when absent or another tenant's."""
        ...

    async def list_channels(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[Channel]:
        """Up to `limit` of the tenant's channels, oldest first (by `created_at`, then id), after `after`."""
        ...

    async def update_channel(
        self, tenant_id: str, channel_id: str, changes: ChannelChanges, *, updated_at: datetime
    ) -> Channel | None:
        """Apply `changes` atomically and return the channel as stored; None when absent or another tenant's.
        Setting `is_active` true clears `disabled_reason` and `disabled_at`."""
        ...

    async def delete_channel(self, tenant_id: str, channel_id: str) -> bool:
        """Delete the channel and its deliveries; False when it was absent or another tenant's."""
        ...

    async def disable_channel(self, tenant_id: str, channel_id: str, *, reason: str, disabled_at: datetime) -> None:
        """Switch the channel off with a reason (e.g. its receiver answered 410). Idempotent."""
        ...

    async def active_channel_ids(self, tenant_id: str, channel_ids: Sequence[str]) -> list[str]:
        """Those of `channel_ids` that exist in the tenant and are active, in the order given."""
        ...

    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Insert deliveries that do not exist yet (by id) and return how many were new.

        Idempotent: a delivery whose id exists is left exactly as it is, so a redelivered event never makes a
        second delivery nor resets one in progress."""
        ...

    async def enqueue_person_delivery(self, delivery: Delivery) -> tuple[str, bool]:
        """Insert a delivery to a person (`contact` and `dedup_key` set) unless the tenant already has one with
        its `dedup_key`: (the id of the one stored, whether it is new). Durable when it returns."""
        ...

    async def enqueue_person_deliveries(self, deliveries: Sequence[Delivery]) -> list[tuple[str, bool]]:
        """`enqueue_person_delivery` for many in one transaction: for each delivery, in the order given, (the id
        of the one stored with its tenant and `dedup_key`, whether this call stored it). Durable when it
        returns."""
        ...

    async def claim_due_deliveries(self, holder: str, *, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Claim up to `limit` deliveries due at `now` for `holder` until `until`, oldest due first, and
        return them as claimed (status `sending`, `attempts` and `round_attempts` counted up by one).

        Due: `pending` or `failed` with `next_attempt_at` not after `now`, or `sending` whose claim expired (its
        sender died mid-attempt). Atomic: of several holders claiming at once, each delivery goes to exactly one.
        """
        ...

    async def record_outcome(self, delivery_id: str, holder: str, outcome: DeliveryOutcome) -> bool:
        """Record the outcome of `holder`'s attempt; False, changing nothing, when `holder` no longer owns it
        (its claim expired and another sender took the delivery over). With `outcome.disable_channel`, the
        channel is disabled in the same transaction."""
        ...

    async def dead_end_channel_deliveries(self, tenant_id: str, channel_id: str, *, reason: str, at: datetime) -> int:
        """Make every `pending` or `failed` delivery of the channel `dead` with `reason`; how many changed."""
        ...

    async def get_delivery(self, tenant_id: str, delivery_id: str) -> Delivery | None:
        """The tenant's delivery, or None when absent or another tenant's."""
        ...

    async def list_deliveries(self, tenant_id: str, query: DeliveryFilter) -> Sequence[Delivery]:
        """Up to `query.limit` of the tenant's deliveries (to channels and to people) matching `query`, newest
        first (by `created_at`, then id), before `query.before`."""
        ...

    async def retry_delivery(self, tenant_id: str, delivery_id: str, *, now: datetime) -> Delivery | None:
        """Put the delivery back to `pending`, due `now`, with a fresh round of attempts, and return it; None
        when absent or another tenant's. A delivery being sent (`sending`) is returned unchanged."""
        ...
