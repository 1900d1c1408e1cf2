"""`SqlNotificationStore`: channels and deliveries in the metadata database (SQLite or PostgreSQL).

A claim locks up to n due rows (`SELECT … FOR UPDATE SKIP LOCKED LIMIT n` on PostgreSQL, so racing senders
take different rows) and updates them with the due condition repeated (re-checked against the latest row
version), returning what it claimed; on SQLite it is one `UPDATE … WHERE id IN (SELECT …) RETURNING`, and
SQLite serializes writers. Either way each due delivery goes to exactly one claimer. An outcome is
recorded only while the recorder still owns the claim (`claimed_by` = holder and status `sending`), so a
sender whose claim expired cannot overwrite the work of the sender that took over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import ColumnElement, Result, Table, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mintlog.adapters.db.models_notifications import DeliveryRow, NotificationChannelRow
from mintlog.adapters.db.one_of import one_of
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.domain.channels import (
    Channel,
    ChannelChanges,
    ChannelType,
    ChatFormat,
    Delivery,
    DeliveryFilter,
    DeliveryOutcome,
    DeliveryStatus,
    EmailSettings,
    PersonContact,
)

__all__ = ["SqlNotificationStore"]

_CHANNEL_EXISTS = ("a channel with this id already exists", "channel_exists")


def _options(channel_type: str, email: EmailSettings | None, chat_format: ChatFormat | None) -> dict[str, Any] | None:
    if channel_type == "email" and email is not None:
        return cast("dict[str, Any]", msgspec.to_builtins(email))
    if channel_type == "chat_webhook" and chat_format is not None:
        return {"format": chat_format}
    return None


def _channel(row: NotificationChannelRow) -> Channel:
    options = row.options or {}
    email = msgspec.convert(options, EmailSettings) if row.channel_type == "email" else None
    chat_format = cast("ChatFormat", options.get("format", "slack")) if row.channel_type == "chat_webhook" else None
    return Channel(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        channel_type=cast("ChannelType", row.channel_type),
        url=row.url,
        headers=dict(row.headers),
        secret=row.secret,
        is_active=row.is_active,
        created_at=row.created_at,
        updated_at=row.updated_at,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        email=email,
        chat_format=chat_format,
    )


def _delivery(row: DeliveryRow) -> Delivery:
    return Delivery(
        id=row.id,
        tenant_id=row.tenant_id,
        channel_id=row.channel_id,
        event_id=row.event_id,
        event_type=row.event_type,
        incident_id=row.incident_id,
        payload=bytes(row.payload),
        status=cast("DeliveryStatus", row.status),
        attempts=row.attempts,
        round_attempts=row.round_attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        claimed_by=row.claimed_by,
        claim_expires_at=row.claim_expires_at,
        last_attempt_at=row.last_attempt_at,
        last_error=row.last_error,
        last_status_code=row.last_status_code,
        last_duration_ms=row.last_duration_ms,
        delivered_at=row.delivered_at,
        contact=None if row.contact is None else msgspec.convert(row.contact, PersonContact),
        dedup_key=row.dedup_key,
    )


_DELIVERIES = cast("Table", DeliveryRow.__table__)


def _triples(result: object) -> list[tuple[str, str, str]]:
    """The rows of a (tenant_id, dedup_key, id) query's result."""
    return cast("list[tuple[str, str, str]]", cast("Result[Any]", result).all())


def _delivery_values(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "tenant_id": delivery.tenant_id,
        "channel_id": delivery.channel_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "incident_id": delivery.incident_id,
        "payload": delivery.payload,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "round_attempts": delivery.round_attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "created_at": delivery.created_at,
        "person_id": None if delivery.contact is None else delivery.contact.person_id,
        "contact": None if delivery.contact is None else msgspec.to_builtins(delivery.contact),
        "dedup_key": delivery.dedup_key,
    }


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(DeliveryRow.status.in_(("pending", "failed")), DeliveryRow.next_attempt_at <= now),
        and_(DeliveryRow.status == "sending", DeliveryRow.claim_expires_at <= now),
    )


class SqlNotificationStore:
    """The notifications port on the tables of `models_notifications`, sharing `SqlMetadataStore`'s engine."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    def _insert(self) -> Any:
        return postgresql.insert if self._metadata.is_postgres else sqlite.insert

    # Channels

    async def create_channel(self, channel: Channel) -> Channel:
        row = NotificationChannelRow(
            id=channel.id,
            tenant_id=channel.tenant_id,
            name=channel.name,
            channel_type=channel.channel_type,
            url=channel.url,
            headers=dict(channel.headers),
            secret=channel.secret,
            options=_options(channel.channel_type, channel.email, channel.chat_format),
            is_active=channel.is_active,
            disabled_reason=channel.disabled_reason,
            disabled_at=channel.disabled_at,
            created_at=channel.created_at,
            updated_at=channel.updated_at,
        )
        with database_errors(_CHANNEL_EXISTS):
            async with self._metadata.session() as session, session.begin():
                session.add(row)
        return channel

    async def get_channel(self, tenant_id: str, channel_id: str) -> Channel | None:
        statement = select(NotificationChannelRow).where(
            NotificationChannelRow.tenant_id == tenant_id, NotificationChannelRow.id == channel_id
        )
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _channel(row)

    async def list_channels(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[Channel]:
        statement = (
            select(NotificationChannelRow)
            .where(NotificationChannelRow.tenant_id == tenant_id)
            .order_by(NotificationChannelRow.created_at, NotificationChannelRow.id)
            .limit(limit)
        )
        if after is not None:
            created_at, channel_id = after
            statement = statement.where(
                or_(
                    NotificationChannelRow.created_at > created_at,
                    and_(NotificationChannelRow.created_at == created_at, NotificationChannelRow.id > channel_id),
                )
            )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_channel(row) for row in rows]

    async def update_channel(
        self, tenant_id: str, channel_id: str, changes: ChannelChanges, *, updated_at: datetime
    ) -> Channel | None:
        statement = (
            select(NotificationChannelRow)
            .where(NotificationChannelRow.tenant_id == tenant_id, NotificationChannelRow.id == channel_id)
            .with_for_update()
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                row = (await session.execute(statement)).scalar_one_or_none()
                if row is None:
                    return None
                if changes.name is not None:
                    row.name = changes.name
                if changes.url is not None:
                    row.url = changes.url
                if changes.headers is not None:
                    row.headers = dict(changes.headers)
                if changes.secret is not None:
                    row.secret = changes.secret
                if changes.email is not None or changes.chat_format is not None:
                    row.options = _options(row.channel_type, changes.email, changes.chat_format)
                if changes.is_active is not None:
                    row.is_active = changes.is_active
                    if changes.is_active:
                        row.disabled_reason = None
                        row.disabled_at = None
                    elif row.disabled_reason is None:
                        row.disabled_reason = "switched off over the API"
                        row.disabled_at = updated_at
                row.updated_at = updated_at
                return _channel(row)

    async def delete_channel(self, tenant_id: str, channel_id: str) -> bool:
        where = (NotificationChannelRow.tenant_id == tenant_id, NotificationChannelRow.id == channel_id)
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                # Explicitly, for databases where ON DELETE CASCADE is not enforced.
                await session.execute(
                    delete(DeliveryRow).where(DeliveryRow.tenant_id == tenant_id, DeliveryRow.channel_id == channel_id)
                )
                deleted = (
                    await session.execute(
                        delete(NotificationChannelRow).where(*where).returning(NotificationChannelRow.id)
                    )
                ).scalar_one_or_none()
        return deleted is not None

    async def disable_channel(self, tenant_id: str, channel_id: str, *, reason: str, disabled_at: datetime) -> None:
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                await self._disable(session, tenant_id, channel_id, reason=reason, disabled_at=disabled_at)

    @staticmethod
    async def _disable(session: Any, tenant_id: str, channel_id: str, *, reason: str, disabled_at: datetime) -> None:
        await session.execute(
            update(NotificationChannelRow)
            .where(
                NotificationChannelRow.tenant_id == tenant_id,
                NotificationChannelRow.id == channel_id,
                NotificationChannelRow.is_active.is_(True),
            )
            .values(is_active=False, disabled_reason=reason[:500], disabled_at=disabled_at, updated_at=disabled_at)
        )

    async def active_channel_ids(self, tenant_id: str, channel_ids: Sequence[str]) -> list[str]:
        if not channel_ids:
            return []
        statement = select(NotificationChannelRow.id).where(
            NotificationChannelRow.tenant_id == tenant_id,
            NotificationChannelRow.id.in_(list(channel_ids)),
            NotificationChannelRow.is_active.is_(True),
        )
        with database_errors():
            active = {row.id for row in await self._metadata.read(statement)}
        return list(dict.fromkeys(channel_id for channel_id in channel_ids if channel_id in active))

    # Deliveries

    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        # One statement compiled once (cached), its rows sent as an executemany: a multi-row VALUES built per
        # call costs a compilation per call, longer than the insert for a few hundred rows.
        statement = (
            self._insert()(_DELIVERIES)
            .on_conflict_do_nothing(index_elements=[_DELIVERIES.c.id])
            .returning(_DELIVERIES.c.id)
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                inserted = (
                    (await session.execute(statement, [_delivery_values(delivery) for delivery in deliveries]))
                    .scalars()
                    .all()
                )
        return len(inserted)

    async def enqueue_person_delivery(self, delivery: Delivery) -> tuple[str, bool]:
        if delivery.dedup_key is None:
            raise ValueError("a person delivery needs a dedup_key")
        statement = (
            self._insert()(DeliveryRow)
            .values([_delivery_values(delivery)])
            .on_conflict_do_nothing(index_elements=[DeliveryRow.tenant_id, DeliveryRow.dedup_key])
            .returning(DeliveryRow.id)
        )
        existing = select(DeliveryRow.id).where(
            DeliveryRow.tenant_id == delivery.tenant_id, DeliveryRow.dedup_key == delivery.dedup_key
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                inserted = (await session.execute(statement)).scalar_one_or_none()
                if inserted is not None:
                    return inserted, True
                return (await session.execute(existing)).scalar_one(), False

    async def enqueue_person_deliveries(self, deliveries: Sequence[Delivery]) -> list[tuple[str, bool]]:
        firsts: dict[tuple[str, str], Delivery] = {}
        for delivery in deliveries:
            if delivery.dedup_key is None:
                raise ValueError("a person delivery needs a dedup_key")
            firsts.setdefault((delivery.tenant_id, delivery.dedup_key), delivery)
        if not firsts:
            return []
        new: set[tuple[str, str]] = set()
        stored: dict[tuple[str, str], str] = {}
        statement = (
            self._insert()(_DELIVERIES)
            .on_conflict_do_nothing(index_elements=[_DELIVERIES.c.tenant_id, _DELIVERIES.c.dedup_key])
            .returning(_DELIVERIES.c.tenant_id, _DELIVERIES.c.dedup_key, _DELIVERIES.c.id)
        )
        rows = [_delivery_values(delivery) for delivery in firsts.values()]
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                for tenant_id, key, stored_id in _triples(await session.execute(statement, rows)):
                    new.add((tenant_id, key))
                    stored[tenant_id, key] = stored_id
                missing = [pair for pair in firsts if pair not in stored]
                if missing:
                    postgres = self._metadata.is_postgres
                    existing = select(DeliveryRow.tenant_id, DeliveryRow.dedup_key, DeliveryRow.id).where(
                        one_of(
                            DeliveryRow.tenant_id, sorted({tenant_id for tenant_id, _ in missing}), postgres=postgres
                        ),
                        one_of(DeliveryRow.dedup_key, [key for _, key in missing], postgres=postgres),
                    )
                    for tenant_id, key, stored_id in _triples(await session.execute(existing)):
                        stored[tenant_id, key] = stored_id
        answers: list[tuple[str, bool]] = []
        for delivery in deliveries:
            pair = (delivery.tenant_id, cast("str", delivery.dedup_key))
            answers.append((stored[pair], pair in new and firsts[pair] is delivery))
        return answers

    async def claim_due_deliveries(self, holder: str, *, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        candidates = (
            select(DeliveryRow.id)
            .where(_due(now))
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        postgres = self._metadata.is_postgres
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                if postgres:
                    # Lock the candidates first: PostgreSQL may re-run an `IN (… LIMIT n SKIP LOCKED)` subquery
                    # per row and so claim more than `limit`.
                    ids = list((await session.execute(candidates)).scalars().all())
                    if not ids:
                        return []
                    chosen = one_of(DeliveryRow.id, ids, postgres=True)
                else:
                    # SQLite: one statement, so the read and the write share the one write lock.
                    chosen = DeliveryRow.id.in_(candidates.scalar_subquery())
                statement = (
                    update(DeliveryRow)
                    .where(chosen, _due(now))
                    .values(
                        status="sending",
                        claimed_by=holder,
                        claim_expires_at=until,
                        attempts=DeliveryRow.attempts + 1,
                        round_attempts=DeliveryRow.round_attempts + 1,
                    )
                    .returning(DeliveryRow)
                    .execution_options(synchronize_session=False)
                )
                rows = (await session.scalars(statement)).all()
                claimed = [_delivery(row) for row in rows]
        return sorted(claimed, key=lambda delivery: (delivery.next_attempt_at, delivery.id))

    async def record_outcome(self, delivery_id: str, holder: str, outcome: DeliveryOutcome) -> bool:
        values: dict[str, Any] = {
            "status": outcome.status,
            "claimed_by": None,
            "claim_expires_at": None,
            "last_attempt_at": outcome.attempted_at,
            "last_error": outcome.error,
            "last_status_code": outcome.status_code,
            "last_duration_ms": outcome.duration_ms,
        }
        if outcome.status == "delivered":
            values["delivered_at"] = outcome.attempted_at
        if outcome.status == "failed" and outcome.next_attempt_at is not None:
            values["next_attempt_at"] = outcome.next_attempt_at
        statement = (
            update(DeliveryRow)
            .where(DeliveryRow.id == delivery_id, DeliveryRow.claimed_by == holder, DeliveryRow.status == "sending")
            .values(**values)
            .returning(DeliveryRow.tenant_id, DeliveryRow.channel_id)
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                owned = (await session.execute(statement)).first()
                if owned is None:
                    return False
                tenant_id, channel_id = owned
                if outcome.disable_channel is not None and channel_id is not None:
                    await self._disable(
                        session, tenant_id, channel_id, reason=outcome.disable_channel, disabled_at=outcome.attempted_at
                    )
        return True

    async def dead_end_channel_deliveries(self, tenant_id: str, channel_id: str, *, reason: str, at: datetime) -> int:
        statement = (
            update(DeliveryRow)
            .where(
                DeliveryRow.tenant_id == tenant_id,
                DeliveryRow.channel_id == channel_id,
                DeliveryRow.status.in_(("pending", "failed")),
            )
            .values(status="dead", last_error=reason, claimed_by=None, claim_expires_at=None)
            .returning(DeliveryRow.id)
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                changed = (await session.execute(statement)).scalars().all()
        return len(changed)

    async def get_delivery(self, tenant_id: str, delivery_id: str) -> Delivery | None:
        statement = select(DeliveryRow).where(DeliveryRow.tenant_id == tenant_id, DeliveryRow.id == delivery_id)
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _delivery(row)

    async def list_deliveries(self, tenant_id: str, query: DeliveryFilter) -> Sequence[Delivery]:
        filters: list[ColumnElement[bool]] = [DeliveryRow.tenant_id == tenant_id]
        if query.status is not None:
            filters.append(DeliveryRow.status == query.status)
        if query.channel_id is not None:
            filters.append(DeliveryRow.channel_id == query.channel_id)
        if query.event_id is not None:
            filters.append(DeliveryRow.event_id == query.event_id)
        if query.person_id is not None:
            filters.append(DeliveryRow.person_id == query.person_id)
        if query.before is not None:
            created_at, delivery_id = query.before
            filters.append(
                or_(
                    DeliveryRow.created_at < created_at,
                    and_(DeliveryRow.created_at == created_at, DeliveryRow.id < delivery_id),
                )
            )
        statement = (
            select(DeliveryRow)
            .where(*filters)
            .order_by(DeliveryRow.created_at.desc(), DeliveryRow.id.desc())
            .limit(query.limit)
        )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_delivery(row) for row in rows]

    async def retry_delivery(self, tenant_id: str, delivery_id: str, *, now: datetime) -> Delivery | None:
        statement = (
            select(DeliveryRow)
            .where(DeliveryRow.tenant_id == tenant_id, DeliveryRow.id == delivery_id)
            .with_for_update()
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                row = (await session.execute(statement)).scalar_one_or_none()
                if row is None:
                    return None
                claim_live = row.claim_expires_at is not None and row.claim_expires_at > now
                if row.status == "sending" and claim_live:
                    return _delivery(row)
                row.status = "pending"
                row.next_attempt_at = now
                row.round_attempts = 0
                row.claimed_by = None
                row.claim_expires_at = None
                return _delivery(row)
