"""The idempotency port: what ingest remembers of each `Idempotency-Key`, durably, for a window.

A record is written before its batch is published (`claim`) and marked completed once the bus acknowledged
every message of the batch (`complete`). It holds what a retry with the same key needs to be answered
without storing anything twice: the digest of the body (a different body is refused), the batch id and
receive time the batch was published with (a retry republishes exactly the same messages, with the same
event ids) and the `202` answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

__all__ = ["IdempotencyRecord", "IdempotencyStore"]


class IdempotencyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One `Idempotency-Key` of one tenant.

    `key_sha256` and `body_sha256` are hex SHA-256 digests of the key and of the (decompressed) body.
    `completed` is false from the claim until the bus acknowledged the batch: a pending record's batch may or
    may not be stored. The record counts until `expires_at`; after that the key is new again.
    """

    tenant_id: str
    key_sha256: str
    body_sha256: str
    batch_id: str
    received_at: datetime
    answer: bytes
    completed: bool
    expires_at: datetime


class IdempotencyStore(Protocol):
    """Idempotency records in the metadata database. Every method raises `DatabaseUnavailable` when it cannot
    be reached; a write is durable when it returns. Expiry is judged against the `now` each caller passes."""

    async def get(self, tenant_id: str, key_sha256: str, *, now: datetime) -> IdempotencyRecord | None:
        """The tenant's record of the key, or None when there is none or it expired (`expires_at <= now`)."""
        ...

    async def claim(self, record: IdempotencyRecord, *, now: datetime) -> IdempotencyRecord:
        """Store `record` unless an unexpired record holds its tenant and key; return the record holding them.

        The answer is `record` itself when it was stored (an expired record is replaced), else the holder,
        unchanged. Atomic: of several claims racing for one key, exactly one stores its record and the
        others get that one back.
        """
        ...

    async def complete(self, tenant_id: str, key_sha256: str, batch_id: str) -> None:
        """Mark the record of the key as completed, if it still is the one of `batch_id` (idempotent)."""
        ...

    async def forget_expired(self, *, now: datetime, limit: int) -> int:
        """Delete up to `limit` records that expired at `now`; return how many were deleted."""
        ...
