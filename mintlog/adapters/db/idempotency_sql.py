"""`SqlIdempotencyStore`: ingest's idempotency records on the metadata database (SQLite or PostgreSQL).

A claim is one conditional upsert (`INSERT … ON CONFLICT DO UPDATE … WHERE expired`), atomic on both dialects
like the job leases of `SqlMetadataStore`; when it stores nothing, the holder is read in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from mintlog.adapters.db.models_idempotency import IdempotencyKeyRow
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.ports.idempotency import IdempotencyRecord

__all__ = ["SqlIdempotencyStore"]


def _record(row: IdempotencyKeyRow) -> IdempotencyRecord:
    return IdempotencyRecord(
        tenant_id=row.tenant_id,
        key_sha256=row.key_sha256,
        body_sha256=row.body_sha256,
        batch_id=row.batch_id,
        received_at=row.received_at,
        answer=row.answer,
        completed=row.completed,
        expires_at=row.expires_at,
    )


class SqlIdempotencyStore:
    """Implements `mintlog.ports.idempotency.IdempotencyStore` on the table of migration 0008."""

    def __init__(self, store: SqlMetadataStore) -> None:
        self._store = store

    async def get(self, tenant_id: str, key_sha256: str, *, now: datetime) -> IdempotencyRecord | None:
        statement = select(IdempotencyKeyRow).where(
            IdempotencyKeyRow.tenant_id == tenant_id,
            IdempotencyKeyRow.key_sha256 == key_sha256,
            IdempotencyKeyRow.expires_at > now,
        )
        with database_errors():
            async with self._store.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _record(row)

    async def claim(self, record: IdempotencyRecord, *, now: datetime) -> IdempotencyRecord:
        values: dict[str, Any] = {
            "tenant_id": record.tenant_id,
            "key_sha256": record.key_sha256,
            "body_sha256": record.body_sha256,
            "batch_id": record.batch_id,
            "received_at": record.received_at,
            "answer": record.answer,
            "completed": record.completed,
            "expires_at": record.expires_at,
        }
        # PostgreSQL evaluates the WHERE against the latest committed row after waiting for a racing insert of
        # the same key, so of several claims exactly one gets a row back; SQLite serializes the writers.
        insert = postgresql.insert if self._store.is_postgres else sqlite.insert
        statement = insert(IdempotencyKeyRow).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[IdempotencyKeyRow.tenant_id, IdempotencyKeyRow.key_sha256],
            set_={name: statement.excluded[name] for name in values if name not in ("tenant_id", "key_sha256")},
            where=IdempotencyKeyRow.expires_at <= now,
        ).returning(IdempotencyKeyRow.batch_id)
        holder = select(IdempotencyKeyRow).where(
            IdempotencyKeyRow.tenant_id == record.tenant_id, IdempotencyKeyRow.key_sha256 == record.key_sha256
        )
        with database_errors():
            async with self._store.session() as session, session.begin():
                if (await session.execute(statement)).scalar_one_or_none() is not None:
                    return record
                row = (await session.execute(holder)).scalar_one()
                return _record(row)

    async def complete(self, tenant_id: str, key_sha256: str, batch_id: str) -> None:
        statement = (
            update(IdempotencyKeyRow)
            .where(
                IdempotencyKeyRow.tenant_id == tenant_id,
                IdempotencyKeyRow.key_sha256 == key_sha256,
                IdempotencyKeyRow.batch_id == batch_id,
            )
            .values(completed=True)
        )
        with database_errors():
            async with self._store.session() as session, session.begin():
                await session.execute(statement)

    async def forget_expired(self, *, now: datetime, limit: int) -> int:
        oldest = (
            select(IdempotencyKeyRow.tenant_id, IdempotencyKeyRow.key_sha256)
            .where(IdempotencyKeyRow.expires_at <= now)
            .order_by(IdempotencyKeyRow.expires_at)
            .limit(limit)
        )
        statement = delete(IdempotencyKeyRow).where(
            tuple_(IdempotencyKeyRow.tenant_id, IdempotencyKeyRow.key_sha256).in_(oldest),
            IdempotencyKeyRow.expires_at <= now,
        )
        with database_errors():
            async with self._store.session() as session, session.begin():
                result = cast("CursorResult[Any]", await session.execute(statement))
        return result.rowcount
