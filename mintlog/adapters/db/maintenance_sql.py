"""`SqlMaintenanceWindowStore` and `SqlBadgeStore` on the tables of `models_maintenance` (SQLite or PostgreSQL).

The per-tenant limit of windows is counted in the same transaction as the insert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import CursorResult, and_, delete, func, or_, select, update

from mintlog.adapters.db.models_maintenance import BadgeRow, MaintenanceWindowRow
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.domain.maintenance import MaintenanceWindow
from mintlog.domain.maintenance_windows import StoredWindow, WindowTargets
from mintlog.errors import Conflict

__all__ = ["SqlBadgeStore", "SqlMaintenanceWindowStore"]


def _window(row: MaintenanceWindowRow) -> StoredWindow:
    return StoredWindow(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        schedule=msgspec.convert(row.schedule, MaintenanceWindow),
        targets=msgspec.convert(row.targets, WindowTargets),
        comment=row.comment,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _json(value: msgspec.Struct) -> dict[str, Any]:
    return cast("dict[str, Any]", msgspec.to_builtins(value))


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


class SqlMaintenanceWindowStore:
    """`MaintenanceWindowStore` sharing the metadata store's engine."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    async def create_window(self, window: StoredWindow, *, max_per_tenant: int) -> StoredWindow:
        row = MaintenanceWindowRow(
            id=window.id,
            tenant_id=window.tenant_id,
            name=window.name,
            schedule=_json(window.schedule),
            targets=_json(window.targets),
            comment=window.comment,
            created_at=window.created_at,
            updated_at=window.updated_at,
        )
        count = (
            select(func.count())
            .select_from(MaintenanceWindowRow)
            .where(MaintenanceWindowRow.tenant_id == window.tenant_id)
        )
        with database_errors((f"maintenance window {window.id!r} already exists", "maintenance_window_exists")):
            async with self._metadata.session() as session, session.begin():
                if (await session.execute(count)).scalar_one() >= max_per_tenant:
                    raise Conflict(
                        f"this tenant already has {max_per_tenant} maintenance windows, the most it may have; "
                        "delete one first",
                        code="too_many_maintenance_windows",
                    )
                session.add(row)
        return window

    async def get_window(self, tenant_id: str, window_id: str) -> StoredWindow | None:
        statement = select(MaintenanceWindowRow).where(
            MaintenanceWindowRow.tenant_id == tenant_id, MaintenanceWindowRow.id == window_id
        )
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _window(row)

    async def list_windows(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[StoredWindow]:
        statement = (
            select(MaintenanceWindowRow)
            .where(MaintenanceWindowRow.tenant_id == tenant_id)
            .order_by(MaintenanceWindowRow.created_at, MaintenanceWindowRow.id)
            .limit(limit)
        )
        if after is not None:
            created_at, window_id = after
            statement = statement.where(
                or_(
                    MaintenanceWindowRow.created_at > created_at,
                    and_(MaintenanceWindowRow.created_at == created_at, MaintenanceWindowRow.id > window_id),
                )
            )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_window(row) for row in rows]

    async def tenant_windows(self, tenant_id: str) -> Sequence[StoredWindow]:
        statement = (
            select(MaintenanceWindowRow)
            .where(MaintenanceWindowRow.tenant_id == tenant_id)
            .order_by(MaintenanceWindowRow.created_at, MaintenanceWindowRow.id)
        )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_window(row) for row in rows]

    async def replace_window(self, window: StoredWindow) -> StoredWindow | None:
        statement = (
            update(MaintenanceWindowRow)
            .where(MaintenanceWindowRow.tenant_id == window.tenant_id, MaintenanceWindowRow.id == window.id)
            .values(
                name=window.name,
                schedule=_json(window.schedule),
                targets=_json(window.targets),
                comment=window.comment,
                updated_at=window.updated_at,
            )
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                if _rowcount(await session.execute(statement)) != 1:
                    return None
                row = await session.get(MaintenanceWindowRow, window.id, populate_existing=True)
                return None if row is None else _window(row)

    async def delete_window(self, tenant_id: str, window_id: str) -> bool:
        statement = delete(MaintenanceWindowRow).where(
            MaintenanceWindowRow.tenant_id == tenant_id, MaintenanceWindowRow.id == window_id
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                return _rowcount(await session.execute(statement)) == 1


class SqlBadgeStore:
    """`BadgeStore` sharing the metadata store's engine."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    async def set_badge(self, tenant_id: str, monitor_id: str, *, token_hash: str, created_at: datetime) -> None:
        with database_errors(("this badge token is already in use", "badge_exists")):
            async with self._metadata.session() as session, session.begin():
                await session.execute(
                    delete(BadgeRow).where(BadgeRow.tenant_id == tenant_id, BadgeRow.monitor_id == monitor_id)
                )
                session.add(
                    BadgeRow(monitor_id=monitor_id, tenant_id=tenant_id, token_hash=token_hash, created_at=created_at)
                )

    async def delete_badge(self, tenant_id: str, monitor_id: str) -> bool:
        statement = delete(BadgeRow).where(BadgeRow.tenant_id == tenant_id, BadgeRow.monitor_id == monitor_id)
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                return _rowcount(await session.execute(statement)) == 1

    async def badge_monitor(self, token_hash: str) -> tuple[str, str] | None:
        statement = select(BadgeRow.tenant_id, BadgeRow.monitor_id).where(BadgeRow.token_hash == token_hash)
        with database_errors():
            async with self._metadata.session() as session:
                found = (await session.execute(statement)).one_or_none()
        return None if found is None else (found[0], found[1])
