"""The archive manifest port: one row per archive object, with the digest and event count that make tampering
or loss detectable (`GET /v1/archive/verify`).

An archive object's key is `archive/{tenant}/{YYYY-MM-DD}/{HH}/{first event id}.ndjson.gz`, the day and hour
being the UTC hour in which ingest accepted its events (see `mintlog.roles.pipeline.archive`). Keys of one
tenant therefore sort by hour first, which is the order every listing here uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

import msgspec

__all__ = ["ArchiveManifest", "ArchiveObject"]


class ArchiveObject(msgspec.Struct, frozen=True, kw_only=True):
    """One archive object as recorded when it was written.

    `sha256` is the hex digest of the stored (gzip) bytes, `bytes` their length, `event_count` the number of
    NDJSON lines inside. `first_event_at`/`last_event_at` are the earliest and latest event timestamps in it
    (event time, which may lie outside the object's receive hour).
    """

    tenant_id: str
    key: str
    day: date
    hour: int
    event_count: int
    bytes: int
    sha256: str
    first_event_at: datetime
    last_event_at: datetime
    created_at: datetime


class ArchiveManifest(Protocol):
    """The manifest in the metadata database. Every method raises `DatabaseUnavailable` when it cannot be reached;
    a write is durable when it returns."""

    async def record(self, entry: ArchiveObject) -> None:
        """Insert the object's row, or replace the row of the same tenant and key (an object rewritten after a
        redelivery): the manifest always describes the latest bytes written under a key."""
        ...

    async def list_objects(
        self, tenant_id: str, *, start: datetime, end: datetime, after: str | None = None, limit: int = 100
    ) -> Sequence[ArchiveObject]:
        """Up to `limit` objects of the tenant whose hour starts in [hour of `start`, `end`), in key order (hour,
        then first event id), with keys after `after`."""
        ...

    async def objects_before(self, tenant_id: str, day: date, *, limit: int = 100) -> Sequence[ArchiveObject]:
        """Up to `limit` objects of the tenant whose day is before `day`, oldest first (for retention)."""
        ...

    async def forget(self, tenant_id: str, keys: Sequence[str]) -> int:
        """Delete the tenant's rows with these keys; returns how many there were."""
        ...
