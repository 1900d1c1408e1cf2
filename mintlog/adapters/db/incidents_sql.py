"""`SqlIncidentStore`: incidents, timelines and silences on the metadata database (SQLite or PostgreSQL).

How the guarantees hold on both dialects without long locks:
- one open incident per dedup key: the partial unique index `uq_incidents_open_dedup_key`; an insert that
  loses the race fails, and the call starts over, finding the winner's incident to append to;
- exactly one entry per alert event: the unique (tenant_id, source_id) of the timeline; a redelivery finds
  the entry, and a racing duplicate fails its insert and finds it on the next attempt;
- status changes are conditional updates (`… WHERE status = <the status that was checked>`), so of two
  concurrent moves exactly one applies, and appending to an open incident updates it `WHERE status <>
  'resolved'`, so nothing is appended to an incident resolved in the meantime (the plan is redone instead).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mintlog.adapters.db.models_incidents import IncidentRow, SilenceRow, TimelineEntryRow
from mintlog.adapters.db.one_of import one_of
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.domain.alerting import IncidentStatus
from mintlog.domain.incidents import (
    AlertPlan,
    EntryDraft,
    Incident,
    TimelineEntry,
    TimelineEventType,
    check_transition,
)
from mintlog.domain.silences import Silence, SilenceState
from mintlog.errors import DatabaseUnavailable
from mintlog.ports.incidents import AppliedChange, IncidentVersion, NewEntry

__all__ = ["SqlIncidentStore"]

logger = logging.getLogger(__name__)

_MAX_ATTEMPTS = 20


def _incident(row: IncidentRow | Row[Any]) -> Incident:
    return Incident(
        id=row.id,
        tenant_id=row.tenant_id,
        title=row.title,
        description=row.description,
        severity=row.severity,
        status=cast("IncidentStatus", row.status),
        dedup_key=row.dedup_key,
        rule_id=row.rule_id,
        channel_ids=tuple(row.channel_ids),
        labels=dict(row.labels),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        escalation_policy_id=row.escalation_policy_id,
    )


def _incident_row(incident: Incident) -> IncidentRow:
    return IncidentRow(
        id=incident.id,
        tenant_id=incident.tenant_id,
        title=incident.title,
        description=incident.description,
        severity=incident.severity,
        status=incident.status,
        dedup_key=incident.dedup_key,
        rule_id=incident.rule_id,
        channel_ids=list(incident.channel_ids),
        labels=dict(incident.labels),
        created_by=incident.created_by,
        created_at=incident.created_at,
        updated_at=incident.updated_at,
        acknowledged_at=incident.acknowledged_at,
        acknowledged_by=incident.acknowledged_by,
        resolved_at=incident.resolved_at,
        resolved_by=incident.resolved_by,
        escalation_policy_id=incident.escalation_policy_id,
    )


def _entry(row: TimelineEntryRow) -> TimelineEntry:
    return TimelineEntry(
        id=row.id,
        tenant_id=row.tenant_id,
        incident_id=row.incident_id,
        occurred_at=row.occurred_at,
        event_type=cast("TimelineEventType", row.event_type),
        actor=row.actor,
        content=row.content,
        data=dict(row.data),
        source_id=row.source_id,
        event=None if row.event is None else dict(row.event),
        published_at=row.published_at,
    )


def _entry_values(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "incident_id": entry.incident_id,
        "tenant_id": entry.tenant_id,
        "occurred_at": entry.occurred_at,
        "event_type": entry.event_type,
        "actor": entry.actor,
        "content": entry.content,
        "data": dict(entry.data),
        "source_id": entry.source_id,
        "event": entry.event,
        "published_at": entry.published_at,
    }


def _entry_row(entry: TimelineEntry) -> TimelineEntryRow:
    return TimelineEntryRow(**_entry_values(entry))


_ENTRIES = cast("Table", TimelineEntryRow.__table__)
_INCIDENTS = cast("Table", IncidentRow.__table__)
_STAMP_INCIDENT = (
    update(_INCIDENTS)
    .where(_INCIDENTS.c.id == bindparam("stamp_id"))
    .values(updated_at=bindparam("stamp_at", type_=_INCIDENTS.c.updated_at.type))
)


def _silence(row: SilenceRow) -> Silence:
    return Silence(
        id=row.id,
        tenant_id=row.tenant_id,
        rule_id=row.rule_id,
        labels=dict(row.matchers),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        comment=row.comment,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _silence_state(state: SilenceState, now: datetime) -> ColumnElement[bool]:
    if state == "expired":
        return SilenceRow.ends_at <= now
    if state == "pending":
        return and_(SilenceRow.starts_at > now, SilenceRow.ends_at > now)
    return and_(SilenceRow.starts_at <= now, SilenceRow.ends_at > now)


def _newest_first_after(created_at: Any, row_id: Any, before: tuple[datetime, str]) -> ColumnElement[bool]:
    at, item_id = before
    return or_(created_at < at, and_(created_at == at, row_id < item_id))


def _status_values(target: IncidentStatus, draft: EntryDraft) -> dict[str, Any]:
    """The columns a change to `target` recorded by `draft` sets."""
    at, actor = draft.occurred_at, draft.actor
    values: dict[str, Any] = {"status": target, "updated_at": at}
    if target == "acknowledged":
        values |= {"acknowledged_at": at, "acknowledged_by": actor}
    if target == "resolved":
        values |= {"resolved_at": at, "resolved_by": actor}
    return values


class _Retry(Exception):
    """The state read at the start of an attempt changed before its write: start over."""


class SqlIncidentStore:
    """The `IncidentStore` port on the `SqlMetadataStore`'s database (it must be started first)."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    def _session(self) -> AsyncSession:
        return self._metadata.session()

    def _insert(self) -> Any:
        return postgresql.insert if self._metadata.is_postgres else sqlite.insert

    # Incidents

    async def create_incident(self, incident: Incident, entry: EntryDraft) -> AppliedChange:
        stored = entry.entry(incident)
        with database_errors(("an incident or timeline entry with this id already exists", "incident_exists")):
            async with self._session() as session, session.begin():
                session.add(_incident_row(incident))
                await session.flush()
                session.add(_entry_row(stored))
        return AppliedChange(incident=incident, entry=stored)

    async def apply_alert(
        self,
        tenant_id: str,
        dedup_key: str,
        source_id: str,
        plan: Callable[[Incident | None], AlertPlan | None],
    ) -> AppliedChange | None:
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with database_errors():
                    return await self._apply_alert_once(tenant_id, dedup_key, source_id, plan)
            except (_Retry, DatabaseUnavailable) as exc:
                if isinstance(exc, DatabaseUnavailable) and not isinstance(exc.__cause__, IntegrityError):
                    raise
                logger.debug("alert %s for %s lost a race (attempt %d); retrying", source_id, dedup_key, attempt)
        raise DatabaseUnavailable(f"alert event {source_id!r} kept conflicting after {_MAX_ATTEMPTS} attempts")

    async def _apply_alert_once(
        self,
        tenant_id: str,
        dedup_key: str,
        source_id: str,
        plan: Callable[[Incident | None], AlertPlan | None],
    ) -> AppliedChange | None:
        async with self._session() as session, session.begin():
            existing = (
                await session.execute(
                    select(TimelineEntryRow).where(
                        TimelineEntryRow.tenant_id == tenant_id, TimelineEntryRow.source_id == source_id
                    )
                )
            ).scalar_one_or_none()
            if existing is not None:
                incident_row = await session.get(IncidentRow, existing.incident_id)
                if incident_row is None:  # deleted with its tenant meanwhile
                    return None
                return AppliedChange(incident=_incident(incident_row), entry=_entry(existing), replayed=True)
            open_row = (
                await session.execute(
                    select(IncidentRow).where(
                        IncidentRow.tenant_id == tenant_id,
                        IncidentRow.dedup_key == dedup_key,
                        IncidentRow.status != "resolved",
                    )
                )
            ).scalar_one_or_none()
            decided = plan(None if open_row is None else _incident(open_row))
            if decided is None:
                return None
            draft = decided.entry
            if decided.open is not None:
                incident = decided.open
                session.add(_incident_row(incident))
                await session.flush()
            else:
                assert decided.append_to is not None, "an AlertPlan opens or appends"
                assert open_row is not None, "an AlertPlan appends to the open incident"
                draft = draft.after(open_row.updated_at)
                values: dict[str, Any] = {"updated_at": draft.occurred_at}
                if decided.resolve:
                    values |= {"status": "resolved", "resolved_at": draft.occurred_at, "resolved_by": draft.actor}
                updated = await self._update_incident(
                    session, tenant_id, decided.append_to, values, IncidentRow.status != "resolved"
                )
                if updated is None:
                    raise _Retry
                incident = updated
            stored = draft.entry(incident)
            session.add(_entry_row(stored))
            await session.flush()
        return AppliedChange(incident=incident, entry=stored)

    async def _update_incident(
        self,
        session: AsyncSession,
        tenant_id: str,
        incident_id: str,
        values: dict[str, Any],
        *conditions: ColumnElement[bool],
    ) -> Incident | None:
        """Update the incident when `conditions` hold and return it as updated; None when no row matched."""
        statement = (
            update(IncidentRow)
            .where(IncidentRow.tenant_id == tenant_id, IncidentRow.id == incident_id, *conditions)
            .values(**values)
            .returning(IncidentRow)
            # The row may already be in the session (read earlier in the transaction): take the updated values.
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _incident(row)

    async def get_incident(self, tenant_id: str, incident_id: str) -> Incident | None:
        statement = select(IncidentRow).where(IncidentRow.tenant_id == tenant_id, IncidentRow.id == incident_id)
        with database_errors():
            async with self._session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _incident(row)

    async def get_incidents(self, keys: Sequence[tuple[str, str]]) -> Sequence[Incident]:
        return [_incident(row) for row in await self._incident_rows(list(_INCIDENTS.c), keys)]

    async def incident_versions(self, keys: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], IncidentVersion]:
        incidents = _INCIDENTS.c
        columns = [incidents.tenant_id, incidents.id, incidents.status, incidents.updated_at]
        return {
            (row.tenant_id, row.id): (row.status, row.updated_at) for row in await self._incident_rows(columns, keys)
        }

    async def _incident_rows(self, columns: Sequence[Any], keys: Sequence[tuple[str, str]]) -> list[Row[Any]]:
        """`columns` (with `tenant_id` and `id`) of the incidents of these (tenant id, incident id) pairs, in one
        statement on the read connection (one round trip, no ORM objects: a batch of steps reads hundreds)."""
        wanted = set(keys)
        if not wanted:
            return []
        statement = select(*columns).where(
            one_of(
                _INCIDENTS.c.id, sorted({incident_id for _, incident_id in wanted}), postgres=self._metadata.is_postgres
            )
        )
        with database_errors():
            rows = await self._metadata.read(statement)
        return [row for row in rows if (row.tenant_id, row.id) in wanted]

    async def list_incidents(
        self,
        tenant_id: str,
        *,
        statuses: Sequence[IncidentStatus] | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[Incident]:
        statement = (
            select(IncidentRow)
            .where(IncidentRow.tenant_id == tenant_id)
            .order_by(IncidentRow.created_at.desc(), IncidentRow.id.desc())
            .limit(limit)
        )
        if statuses is not None:
            statement = statement.where(IncidentRow.status.in_(list(statuses)))
        if before is not None:
            statement = statement.where(_newest_first_after(IncidentRow.created_at, IncidentRow.id, before))
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_incident(row) for row in rows]

    async def timeline(self, tenant_id: str, incident_id: str) -> Sequence[TimelineEntry]:
        statement = (
            select(TimelineEntryRow)
            .where(TimelineEntryRow.tenant_id == tenant_id, TimelineEntryRow.incident_id == incident_id)
            .order_by(TimelineEntryRow.occurred_at, TimelineEntryRow.id)
        )
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_entry(row) for row in rows]

    async def change_status(
        self, tenant_id: str, incident_id: str, target: IncidentStatus, entry: EntryDraft
    ) -> AppliedChange | None:
        for _ in range(_MAX_ATTEMPTS):
            with database_errors(("a timeline entry with this id already exists", "entry_exists")):
                async with self._session() as session, session.begin():
                    current = await self._get(session, tenant_id, incident_id, for_update=True)
                    if current is None:
                        return None
                    check_transition(incident_id, current.status, target)
                    draft = entry.after(current.updated_at)
                    updated = await self._update_incident(
                        session,
                        tenant_id,
                        incident_id,
                        _status_values(target, draft),
                        IncidentRow.status == current.status,
                    )
                    if updated is None:
                        continue  # changed meanwhile: check the transition again from its new status
                    stored = draft.entry(updated)
                    session.add(_entry_row(stored))
                    await session.flush()
                return AppliedChange(incident=updated, entry=stored)
        raise DatabaseUnavailable(f"incident {incident_id!r} kept changing under a status change")

    async def _get(
        self, session: AsyncSession, tenant_id: str, incident_id: str, *, for_update: bool = False
    ) -> Incident | None:
        statement = select(IncidentRow).where(IncidentRow.tenant_id == tenant_id, IncidentRow.id == incident_id)
        if for_update:  # PostgreSQL: racing changes queue here; SQLite has one writer at a time anyway
            statement = statement.with_for_update()
        row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _incident(row)

    async def append_entry(self, tenant_id: str, incident_id: str, entry: EntryDraft) -> AppliedChange | None:
        with database_errors(("a timeline entry with this id already exists", "entry_exists")):
            async with self._session() as session, session.begin():
                current = await self._get(session, tenant_id, incident_id, for_update=True)
                if current is None:
                    return None
                draft = entry.after(current.updated_at)
                updated = await self._update_incident(
                    session, tenant_id, incident_id, {"updated_at": draft.occurred_at}
                )
                if updated is None:
                    return None
                stored = draft.entry(updated)
                session.add(_entry_row(stored))
                await session.flush()
        return AppliedChange(incident=updated, entry=stored)

    async def append_entries(self, entries: Sequence[NewEntry]) -> list[str]:
        by_incident: dict[str, list[NewEntry]] = {}
        for item in entries:
            by_incident.setdefault(item.incident_id, []).append(item)
        if not by_incident:
            return []
        # Locked in one order (by id), so two batches over the same incidents queue rather than deadlock.
        locked = (  # Core rows: no ORM objects for the hundreds of incidents of a batch
            select(_INCIDENTS)
            .where(one_of(_INCIDENTS.c.id, sorted(by_incident), postgres=self._metadata.is_postgres))
            .order_by(_INCIDENTS.c.id)
            .with_for_update()
        )
        present = select(TimelineEntryRow.id).where(
            one_of(TimelineEntryRow.id, [item.draft.id for item in entries], postgres=self._metadata.is_postgres)
        )
        with database_errors():
            async with self._session() as session, session.begin():
                incidents = {row.id: _incident(row) for row in (await session.execute(locked)).all()}
                written = set((await session.execute(present)).scalars().all())
                rows: list[dict[str, Any]] = []
                stamps: list[dict[str, Any]] = []
                for incident_id, appended in by_incident.items():
                    incident = incidents.get(incident_id)
                    if incident is None:
                        continue
                    last = incident.updated_at
                    for item in appended:
                        if item.tenant_id != incident.tenant_id or item.draft.id in written:
                            continue
                        written.add(item.draft.id)
                        draft = item.draft.after(last)
                        last = draft.occurred_at
                        rows.append(_entry_values(draft.entry(incident)))
                    if last != incident.updated_at:
                        stamps.append({"stamp_id": incident_id, "stamp_at": last})
                if not rows:
                    return []
                # Executemanys of statements compiled once; a racing writer of the same entry (a claim taken
                # over) is skipped, not an error.
                await session.execute(_STAMP_INCIDENT, stamps)
                insert = self._insert()(_ENTRIES).on_conflict_do_nothing().returning(_ENTRIES.c.id)
                inserted = (await session.execute(insert, rows)).scalars().all()
        return list(inserted)

    # The outbox

    async def unpublished_entries(self, *, occurred_before: datetime, limit: int) -> Sequence[TimelineEntry]:
        statement = (
            select(TimelineEntryRow)
            .where(
                TimelineEntryRow.published_at.is_(None),
                TimelineEntryRow.event.is_not(None),
                TimelineEntryRow.occurred_at < occurred_before,
            )
            .order_by(TimelineEntryRow.occurred_at, TimelineEntryRow.id)
            .limit(limit)
        )
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_entry(row) for row in rows]

    async def mark_published(self, entry_ids: Sequence[str], *, published_at: datetime) -> None:
        if not entry_ids:
            return
        statement = (
            update(TimelineEntryRow)
            .where(TimelineEntryRow.id.in_(list(entry_ids)), TimelineEntryRow.published_at.is_(None))
            .values(published_at=published_at)
            .execution_options(synchronize_session=False)
        )
        with database_errors():
            async with self._session() as session, session.begin():
                await session.execute(statement)

    # Silences

    async def create_silence(self, silence: Silence) -> Silence:
        row = SilenceRow(
            id=silence.id,
            tenant_id=silence.tenant_id,
            rule_id=silence.rule_id,
            matchers=dict(silence.labels),
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            comment=silence.comment,
            created_by=silence.created_by,
            created_at=silence.created_at,
        )
        with database_errors(("a silence with this id already exists", "silence_exists")):
            async with self._session() as session, session.begin():
                session.add(row)
        return silence

    async def get_silence(self, tenant_id: str, silence_id: str) -> Silence | None:
        statement = select(SilenceRow).where(SilenceRow.tenant_id == tenant_id, SilenceRow.id == silence_id)
        with database_errors():
            async with self._session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _silence(row)

    async def list_silences(
        self,
        tenant_id: str,
        *,
        now: datetime,
        states: Sequence[SilenceState] | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[Silence]:
        statement = (
            select(SilenceRow)
            .where(SilenceRow.tenant_id == tenant_id)
            .order_by(SilenceRow.created_at.desc(), SilenceRow.id.desc())
            .limit(limit)
        )
        if states is not None:
            statement = statement.where(or_(*(_silence_state(state, now) for state in states)))
        if before is not None:
            statement = statement.where(_newest_first_after(SilenceRow.created_at, SilenceRow.id, before))
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_silence(row) for row in rows]

    async def active_silences(self, tenant_id: str, *, now: datetime) -> Sequence[Silence]:
        statement = select(SilenceRow).where(SilenceRow.tenant_id == tenant_id, _silence_state("active", now))
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_silence(row) for row in rows]

    async def expire_silence(self, tenant_id: str, silence_id: str, *, now: datetime) -> Silence | None:
        with database_errors():
            async with self._session() as session, session.begin():
                await session.execute(
                    update(SilenceRow)
                    .where(SilenceRow.tenant_id == tenant_id, SilenceRow.id == silence_id, SilenceRow.ends_at > now)
                    .values(ends_at=now)
                    .execution_options(synchronize_session=False)
                )
                row = (
                    await session.execute(
                        select(SilenceRow).where(SilenceRow.tenant_id == tenant_id, SilenceRow.id == silence_id)
                    )
                ).scalar_one_or_none()
        return None if row is None else _silence(row)
