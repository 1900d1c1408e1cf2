"""`SqlMetadataStore`: the metadata port on SQLAlchemy 2 async (SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import msgspec
from sqlalchemy import ColumnElement, Executable, Row, and_, delete, event, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from mintlog.adapters.db import migrations
from mintlog.adapters.db.models import ApiKeyRow, AuditLogRow, JobLeaseRow, TenantRow
from mintlog.domain.audit import AuditEntry, AuditQuery, AuditResult
from mintlog.domain.tenants import ApiKey, Tenant, TenantChanges
from mintlog.errors import Conflict, DatabaseUnavailable, MintlogError, UnprocessableEntity

__all__ = ["SqlMetadataStore", "database_errors"]

logger = logging.getLogger(__name__)

_KEY_EXISTS = ("an API key with this id or hash already exists", "key_exists")
_DATA_EXCEPTION_CLASS = "22"
_DISK_FULL = "53100"
_READER_POOL = 8
"""Connections of the read pool (`SqlMetadataStore.read`) kept open, as many as the on-call lookups one notify
instance makes at once (escalation steps); up to as many more under load, each closed once used (a connection
costs a TLS negotiation and an authentication, so the steady load must fit in the kept ones)."""
_json_encoder = msgspec.json.Encoder()


def _json_text(value: object) -> str:
    """The text of a JSON column, written by msgspec (escalation batches bind tens of thousands of JSON values;
    the standard library's encoder was a tenth of a notify instance's CPU). The same JSON for every value the
    standard encoder writes as valid JSON (NaN and infinities, which JSON lacks, become null); what msgspec
    cannot encode (a lone surrogate, a key that is not a string or number) goes to `json.dumps`, as before."""
    try:
        return _json_encoder.encode(value).decode()
    except (TypeError, ValueError, OverflowError):
        return json.dumps(value)


def _tenant(row: TenantRow) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        plan=row.plan,
        retention_days=row.retention_days,
        retention_basis="received_at" if row.retention_basis == "received_at" else "event_time",
        archive_retention_days=row.archive_retention_days,
        time_zone=row.time_zone,
        suspended=row.suspended,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
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
        last_used_at=row.last_used_at,
        rotated_from=row.rotated_from,
    )


def _api_key_row(key: ApiKey) -> ApiKeyRow:
    return ApiKeyRow(
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
        last_used_at=key.last_used_at,
        rotated_from=key.rotated_from,
    )


def _audit_entry(row: AuditLogRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        occurred_at=row.occurred_at,
        tenant_id=row.tenant_id,
        actor_tenant_id=row.actor_tenant_id,
        actor_key_id=row.actor_key_id,
        actor_key_prefix=row.actor_key_prefix,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        result=cast("AuditResult", row.result),
        detail=dict(row.detail),
    )


def _audit_filters(query: AuditQuery) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if query.tenant_id is not None:
        filters.append(or_(AuditLogRow.tenant_id == query.tenant_id, AuditLogRow.actor_tenant_id == query.tenant_id))
    if query.actor is not None:
        filters.append(or_(AuditLogRow.actor_key_id == query.actor, AuditLogRow.actor_key_prefix == query.actor))
    if query.action is not None:
        filters.append(AuditLogRow.action == query.action)
    if query.result is not None:
        filters.append(AuditLogRow.result == query.result)
    if query.start is not None:
        filters.append(AuditLogRow.occurred_at >= query.start)
    if query.end is not None:
        filters.append(AuditLogRow.occurred_at < query.end)
    if query.before is not None:
        occurred_at, entry_id = query.before
        filters.append(
            or_(
                AuditLogRow.occurred_at < occurred_at,
                and_(AuditLogRow.occurred_at == occurred_at, AuditLogRow.id < entry_id),
            )
        )
    return filters


@contextmanager
def database_errors(conflict: tuple[str, str] | None = None) -> Generator[None]:
    """Translate driver and connection failures into `DatabaseUnavailable`, and a unique-constraint
    violation into `Conflict(detail, code=code)` when `conflict` gives them.

    A value the database refuses for what it is (PostgreSQL's SQLSTATE class 22, "data exception": a NUL
    character in a text, 22021 `CharacterNotInRepertoireError`, or `\\u0000` in JSONB, 22P05
    `UntranslatableCharacterError`, …) is a 422 `unstorable_value`: retrying cannot help, so it is never
    "unavailable". The API refuses such values before they get here; this is the last line of defence. A
    full disk (SQLite's `SQLITE_FULL`, PostgreSQL's 53100) stays `DatabaseUnavailable`, saying so.
    """
    try:
        yield
    except IntegrityError as exc:
        if conflict is None:
            raise DatabaseUnavailable(f"metadata database refused a write: {type(exc).__name__}") from exc
        detail, code = conflict
        raise Conflict(detail, code=code) from None
    except DBAPIError as exc:
        raise _driver_error(exc) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}") from exc


def _driver_error(exc: DBAPIError) -> MintlogError:
    """The error of the tree a failed statement stands for (see `database_errors`)."""
    driver_error: object = exc.orig
    sqlstate = getattr(driver_error, "sqlstate", None)
    reason = next(iter(str(driver_error).strip().splitlines()), type(driver_error).__name__)
    if isinstance(sqlstate, str) and sqlstate.startswith(_DATA_EXCEPTION_CLASS):
        logger.warning("the metadata database refused a value (SQLSTATE %s): %s", sqlstate, reason)
        return UnprocessableEntity(
            f"a value of this request cannot be stored in the metadata database: {reason} (SQLSTATE {sqlstate})",
            code="unstorable_value",
        )
    if sqlstate == _DISK_FULL or getattr(driver_error, "sqlite_errorname", None) == "SQLITE_FULL":
        return DatabaseUnavailable(f"the metadata database's disk is full ({reason}); writes fail until space is freed")
    return DatabaseUnavailable(f"metadata database unreachable: {type(exc).__name__}")


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class SqlMetadataStore:
    """Tenants, keys, the audit log and job leases in a SQL database. Every method raises `DatabaseUnavailable`
    when it cannot reach it.

    SQLite runs in WAL mode with `synchronous=FULL`, so a committed write survives a crash. Read-modify-write
    methods lock the row (`SELECT … FOR UPDATE` on PostgreSQL; SQLite serializes writers). A lease claim is
    one conditional upsert (`INSERT … ON CONFLICT DO UPDATE … WHERE`), atomic on both dialects.
    """

    def __init__(self, url: str, *, migrate_on_start: bool = True) -> None:
        self._url = url
        self._migrate_on_start = migrate_on_start
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "SqlMetadataStore.start() was not awaited"
        return self._engine

    @property
    def is_postgres(self) -> bool:
        """Whether the database is PostgreSQL (else SQLite)."""
        return self.engine.dialect.name == "postgresql"

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
        self._engine = create_async_engine(
            self._url, pool_pre_ping=not self._url.startswith("sqlite"), json_serializer=_json_text
        )
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
            self._reader = self._engine  # in process: no round trip to save (and `:memory:` is per engine)
        else:
            # Its own small pool: no ping at checkout (`read` retries a connection found closed instead) and
            # no transaction (a single read-only statement needs no BEGIN/ROLLBACK): one round trip a read.
            self._reader = create_async_engine(
                self._url,
                isolation_level="AUTOCOMMIT",
                pool_size=_READER_POOL,
                max_overflow=_READER_POOL,
                json_serializer=_json_text,
            )
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    async def close(self) -> None:
        if self._reader is not None and self._reader is not self._engine:
            await self._reader.dispose()
        self._reader = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def _session(self) -> AsyncSession:
        assert self._sessions is not None, "SqlMetadataStore.start() was not awaited"
        return self._sessions()

    def session(self) -> AsyncSession:
        """A new session on this store's engine, for the sibling SQL stores (alerting, notifications,
        incidents) that share its database; wrap its use in `database_errors()`."""
        return self._session()

    async def read(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Sequence[Row[Any]]:
        """The rows of one read-only statement, sent alone on a connection in autocommit: one round trip on
        PostgreSQL (no pre-ping, `BEGIN` or `ROLLBACK`), so it sees every commit made before it, by any
        instance. A pooled connection found closed is dropped and the statement sent once more on a new one;
        wrap the call in `database_errors()`."""
        assert self._reader is not None, "SqlMetadataStore.start() was not awaited"
        for attempt in range(2):
            try:
                async with self._reader.connect() as connection:
                    return (await connection.execute(statement, parameters)).all()
            except DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        with database_errors():
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

    # Tenants

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        with database_errors():
            async with self._session() as session:
                row = await session.get(TenantRow, tenant_id)
                return None if row is None else _tenant(row)

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        row = TenantRow(
            id=tenant.id,
            name=tenant.name,
            plan=tenant.plan,
            retention_days=tenant.retention_days,
            retention_basis=tenant.retention_basis,
            archive_retention_days=tenant.archive_retention_days,
            time_zone=tenant.time_zone,
            suspended=tenant.suspended,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at or tenant.created_at,
            deleted_at=tenant.deleted_at,
        )
        with database_errors((f"tenant {tenant.id!r} already exists", "tenant_exists")):
            async with self._session() as session, session.begin():
                session.add(row)
        return _tenant(row)

    async def list_tenants(self, *, after: str | None = None, limit: int = 50) -> Sequence[Tenant]:
        statement = select(TenantRow).order_by(TenantRow.id).limit(limit)
        if after is not None:
            statement = statement.where(TenantRow.id > after)
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_tenant(row) for row in rows]

    async def update_tenant(self, tenant_id: str, changes: TenantChanges, *, updated_at: datetime) -> Tenant | None:
        with database_errors():
            async with self._session() as session, session.begin():
                row = (
                    await session.execute(select(TenantRow).where(TenantRow.id == tenant_id).with_for_update())
                ).scalar_one_or_none()
                if row is None:
                    return None
                if row.deleted_at is not None:
                    if changes.deleted_at is not None:
                        return _tenant(row)
                    raise Conflict(f"tenant {tenant_id!r} is deleted and can no longer change", code="tenant_deleted")
                if changes.plan is not None:
                    row.plan = changes.plan
                if changes.retention_days is not None:
                    row.retention_days = changes.retention_days
                if changes.retention_basis is not None:
                    row.retention_basis = changes.retention_basis
                if not isinstance(changes.archive_retention_days, msgspec.UnsetType):
                    row.archive_retention_days = changes.archive_retention_days
                if changes.time_zone is not None:
                    row.time_zone = changes.time_zone
                if changes.suspended is not None:
                    row.suspended = changes.suspended
                if changes.deleted_at is not None:
                    row.deleted_at = changes.deleted_at
                row.updated_at = updated_at
                return _tenant(row)

    # API keys

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        with database_errors(_KEY_EXISTS):
            async with self._session() as session, session.begin():
                session.add(_api_key_row(key))
        return key

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        statement = (
            select(ApiKeyRow, TenantRow)
            .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
            .where(ApiKeyRow.key_hash == key_hash)
        )
        with database_errors():
            async with self._session() as session:
                result = (await session.execute(statement)).first()
        if result is None:
            return None
        key_row, tenant_row = result
        return _api_key(key_row), _tenant(tenant_row)

    async def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        statement = select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id, ApiKeyRow.id == key_id)
        with database_errors():
            async with self._session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _api_key(row)

    async def list_api_keys(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int | None = None
    ) -> Sequence[ApiKey]:
        statement = (
            select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        )
        if after is not None:
            created_at, key_id = after
            statement = statement.where(
                or_(
                    ApiKeyRow.created_at > created_at,
                    and_(ApiKeyRow.created_at == created_at, ApiKeyRow.id > key_id),
                )
            )
        if limit is not None:
            statement = statement.limit(limit)
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_api_key(row) for row in rows]

    async def _locked_key(self, session: AsyncSession, tenant_id: str, key_id: str) -> ApiKeyRow | None:
        statement = select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id, ApiKeyRow.id == key_id).with_for_update()
        return (await session.execute(statement)).scalar_one_or_none()

    async def revoke_api_key(self, tenant_id: str, key_id: str, *, revoked_at: datetime) -> ApiKey | None:
        with database_errors():
            async with self._session() as session, session.begin():
                row = await self._locked_key(session, tenant_id, key_id)
                if row is None:
                    return None
                if row.revoked_at is None:
                    row.revoked_at = revoked_at
                return _api_key(row)

    async def rotate_api_key(
        self, tenant_id: str, key_id: str, replacement: ApiKey, *, retire_at: datetime
    ) -> tuple[ApiKey, ApiKey] | None:
        now = replacement.created_at
        with database_errors(_KEY_EXISTS):
            async with self._session() as session, session.begin():
                row = await self._locked_key(session, tenant_id, key_id)
                if row is None:
                    return None
                if row.revoked_at is not None:
                    raise Conflict(f"API key {key_id!r} is revoked and cannot be rotated", code="key_revoked")
                if row.expires_at is not None and row.expires_at <= now:
                    raise Conflict(f"API key {key_id!r} has expired and cannot be rotated", code="key_expired")
                if retire_at <= now:
                    row.revoked_at = now
                elif row.expires_at is None or retire_at < row.expires_at:
                    row.expires_at = retire_at
                session.add(_api_key_row(replacement))
                await session.flush()
                return _api_key(row), replacement

    async def touch_api_keys(self, last_used: dict[str, datetime]) -> None:
        if not last_used:
            return
        with database_errors():
            async with self._session() as session, session.begin():
                for key_id, used_at in last_used.items():
                    await session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=used_at))

    # Audit log

    async def append_audit(self, entry: AuditEntry) -> None:
        detail: dict[str, Any] = dict(entry.detail)
        row = AuditLogRow(
            id=entry.id,
            occurred_at=entry.occurred_at,
            tenant_id=entry.tenant_id,
            actor_tenant_id=entry.actor_tenant_id,
            actor_key_id=entry.actor_key_id,
            actor_key_prefix=entry.actor_key_prefix,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            result=entry.result,
            detail=detail,
        )
        with database_errors():
            async with self._session() as session, session.begin():
                session.add(row)

    async def list_audit(self, query: AuditQuery) -> Sequence[AuditEntry]:
        statement = (
            select(AuditLogRow)
            .where(*_audit_filters(query))
            .order_by(AuditLogRow.occurred_at.desc(), AuditLogRow.id.desc())
            .limit(query.limit)
        )
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_audit_entry(row) for row in rows]

    # Job leases

    async def try_claim(self, job: str, holder: str, *, until: datetime, now: datetime) -> bool:
        if until <= now:
            raise ValueError(f"a lease must end after now (until={until.isoformat()}, now={now.isoformat()})")
        # PostgreSQL runs the WHERE against the latest committed row after waiting for a racing insert or
        # update of the same job, so of several claims of a free lease exactly one gets a row back.
        insert = postgresql.insert if self.is_postgres else sqlite.insert
        statement = insert(JobLeaseRow).values(job=job, holder=holder, expires_at=until)
        statement = statement.on_conflict_do_update(
            index_elements=[JobLeaseRow.job],
            set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
            where=or_(JobLeaseRow.expires_at <= now, JobLeaseRow.holder == holder),
        ).returning(JobLeaseRow.holder)
        with database_errors():
            async with self._session() as session, session.begin():
                claimed = (await session.execute(statement)).scalar_one_or_none()
        return claimed == holder

    async def release(self, job: str, holder: str) -> None:
        statement = delete(JobLeaseRow).where(JobLeaseRow.job == job, JobLeaseRow.holder == holder)
        with database_errors():
            async with self._session() as session, session.begin():
                await session.execute(statement)
