"""`SqlArchiveManifest`: the archive manifest on the metadata database (SQLite or PostgreSQL).

Listings use the key range of the requested hours: keys are `archive/{tenant}/{YYYY-MM-DD}/{HH}/…`, so the
keys of hours [h1, h2) are exactly those in [`archive/{tenant}/{h1}/`, `archive/{tenant}/{h2}/`), served by
the primary key (tenant_id, key).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError

from mintlog.adapters.db.models_archive import ArchiveObjectRow
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.ports.archive import ArchiveObject

__all__ = ["SqlArchiveManifest", "hour_prefix"]


def hour_prefix(tenant_id: str, at: datetime) -> str:
    """The key prefix of the tenant's objects of the UTC hour containing `at` (`archive/t/2026-11-27/13/`)."""
    hour = at.astimezone(UTC)
    return f"archive/{tenant_id}/{hour:%Y-%m-%d}/{hour:%H}/"


def _entry(row: ArchiveObjectRow) -> ArchiveObject:
    return ArchiveObject(
        tenant_id=row.tenant_id,
        key=row.key,
        day=row.day,
        hour=row.hour,
        event_count=row.event_count,
        bytes=row.bytes,
        sha256=row.sha256,
        first_event_at=row.first_event_at,
        last_event_at=row.last_event_at,
        created_at=row.created_at,
    )


def _apply(row: ArchiveObjectRow, entry: ArchiveObject) -> None:
    row.day = entry.day
    row.hour = entry.hour
    row.event_count = entry.event_count
    row.bytes = entry.bytes
    row.sha256 = entry.sha256
    row.first_event_at = entry.first_event_at
    row.last_event_at = entry.last_event_at
    row.created_at = entry.created_at


class SqlArchiveManifest:
    """Implements `mintlog.ports.archive.ArchiveManifest` on the tables of migration 0007."""

    def __init__(self, store: SqlMetadataStore) -> None:
        self._store = store

    async def record(self, entry: ArchiveObject) -> None:
        for _ in range(2):
            try:
                with database_errors():
                    async with self._store.session() as session, session.begin():
                        row = await session.get(ArchiveObjectRow, (entry.tenant_id, entry.key), with_for_update=True)
                        if row is None:
                            row = ArchiveObjectRow(tenant_id=entry.tenant_id, key=entry.key)
                            _apply(row, entry)
                            session.add(row)
                        else:
                            _apply(row, entry)
                return
            except Exception as exc:  # a concurrent insert of the same key: update it on the second pass
                if not isinstance(exc.__cause__, IntegrityError):
                    raise
        raise AssertionError("unreachable: the second pass finds the row and updates it")

    async def list_objects(
        self, tenant_id: str, *, start: datetime, end: datetime, after: str | None = None, limit: int = 100
    ) -> Sequence[ArchiveObject]:
        low = hour_prefix(tenant_id, start)
        # `end` is exclusive: an end on an hour boundary excludes that hour, any later instant includes it.
        last = end.astimezone(UTC) - timedelta(microseconds=1)
        high = hour_prefix(tenant_id, last + timedelta(hours=1))
        statement = (
            select(ArchiveObjectRow)
            .where(ArchiveObjectRow.tenant_id == tenant_id, ArchiveObjectRow.key >= low, ArchiveObjectRow.key < high)
            .order_by(ArchiveObjectRow.key)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(ArchiveObjectRow.key > after)
        with database_errors():
            async with self._store.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_entry(row) for row in rows]

    async def objects_before(self, tenant_id: str, day: date, *, limit: int = 100) -> Sequence[ArchiveObject]:
        statement = (
            select(ArchiveObjectRow)
            .where(ArchiveObjectRow.tenant_id == tenant_id, ArchiveObjectRow.day < day)
            .order_by(ArchiveObjectRow.key)
            .limit(limit)
        )
        with database_errors():
            async with self._store.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_entry(row) for row in rows]

    async def forget(self, tenant_id: str, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        statement = delete(ArchiveObjectRow).where(
            ArchiveObjectRow.tenant_id == tenant_id, ArchiveObjectRow.key.in_(list(keys))
        )
        with database_errors():
            async with self._store.session() as session, session.begin():
                result = await session.execute(statement)
                return cast("CursorResult[Any]", result).rowcount
