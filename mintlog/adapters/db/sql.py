"""`SqlMetadataStore`: the metadata port on SQLAlchemy 2 async (SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import event, select, text, update
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from mintlog.adapters.db import migrations
from mintlog.adapters.db.models import ApiKeyRow, TenantRow
from mintlog.domain.tenants import ApiKey, Tenant
from mintlog.errors import Conflict, DatabaseUnavailable

__all__ = ["SqlMetadataStore"]

logger = logging.getLogger(__name__)


def _tenant(row: TenantRow) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        plan=row.plan,
        retention_days=row.retention_days,
        suspended=row.suspended,
        created_at=row.created_at,
    )


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        key_hash=row.key_hash,
        prefix=row.prefix,
        scopes=tuple(row.scopes),
        rate_limit=row.rate_limit,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        created_at=row.created_at,
    )


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class SqlMetadataStore:
    """Tenants and keys in a SQL database. Every method raises `DatabaseUnavailable` when it cannot reach it.

    SQLite runs in WAL mode with `synchronous=FULL`, so a committed write survives a crash.
    """

    def __init__(self, url: str, *, migrate_on_start: bool = True) -> None:
        self._url = url
        self._migrate_on_start = migrate_on_start
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "SqlMetadataStore.start() was not awaited"
        return self._engine

    async def start(self) -> None:
        if self._url.startswith("sqlite"):
            database = self._url.split("///", 1)[-1]
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        if self._migrate_on_start:
            try:
                await migrations.upgrade(self._url)
            except (OperationalError, OSError) as exc:
                raise DatabaseUnavailable(f"cannot migrate the metadata database: {exc}") from exc
        self._engine = create_async_engine(self._url, pool_pre_ping=not self._url.startswith("sqlite"))
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def _session(self):
        assert self._sessions is not None, "SqlMetadataStore.start() was not awaited"
        return self._sessions()

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}") from exc

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        try:
            async with self._session() as session:
                row = await session.get(TenantRow, tenant_id)
                return None if row is None else _tenant(row)
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}") from exc

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        row = TenantRow(
            id=tenant.id,
            name=tenant.name,
            plan=tenant.plan,
            retention_days=tenant.retention_days,
            suspended=tenant.suspended,
            created_at=tenant.created_at,
            updated_at=tenant.created_at,
        )
        try:
            async with self._session() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(f"tenant {tenant.id!r} already exists", code="tenant_exists") from exc
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}") from exc
        return tenant

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        row = ApiKeyRow(
            id=key.id,
            tenant_id=key.tenant_id,
            name=key.name,
            key_hash=key.key_hash,
            prefix=key.prefix,
            scopes=list(key.scopes),
            rate_limit=key.rate_limit,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            created_at=key.created_at,
        )
        try:
            async with self._session() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            raise Conflict("an API key with this id or hash already exists", code="key_exists") from exc
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}") from exc
        return key

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        statement = (
            select(ApiKeyRow, TenantRow)
            .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
            .where(ApiKeyRow.key_hash == key_hash)
        )
        try:
            async with self._session() as session:
                result = (await session.execute(statement)).first()
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}") from exc
        if result is None:
            return None
        key_row, tenant_row = result
        return _api_key(key_row), _tenant(tenant_row)

    async def list_api_keys(self, tenant_id: str) -> Sequence[ApiKey]:
        statement = (
            select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        )
        try:
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}") from exc
        return [_api_key(row) for row in rows]

    async def touch_api_keys(self, last_used: dict[str, datetime]) -> None:
        if not last_used:
            return
        try:
            async with self._session() as session, session.begin():
                for key_id, used_at in last_used.items():
                    await session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=used_at))
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}") from exc
