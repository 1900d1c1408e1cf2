"""`SqlMonitorStore`: uptime monitors, results and state changes in the metadata database (SQLite or PostgreSQL).

Claims are one conditional `UPDATE … WHERE next_check_at = :seen` (rowcount 1 wins), so of several uptime
instances that saw the same due monitor exactly one runs its check for that interval. Status writes compare
`transition_seq` the same way, so a check that finishes after a pause or an edit never overwrites it. A
transition's alert event joins `uptime_alert_outbox` in the transaction of its status (or of the pause or delete
that caused it) and leaves it once published (`mark_alerts_published`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mintlog.adapters.db.models import TenantRow
from mintlog.adapters.db.models_uptime import (
    AlertOutboxRow,
    CheckResultRow,
    MonitorLocationRow,
    MonitorRow,
    StateChangeRow,
)
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.domain.alerting import AlertEvent
from mintlog.domain.heartbeats import HeartbeatState
from mintlog.domain.monitors import Monitor, MonitorSpec, MonitorState, MonitorStatus
from mintlog.domain.streams import decode_alert_event, encode_event
from mintlog.domain.uptime_alerts import uptime_alert_seq
from mintlog.errors import Conflict
from mintlog.ports.uptime import CheckClaim, CheckResult, LocatedDecision, QuorumDecider, StateChangeRecord

__all__ = ["SqlMonitorStore"]


def _monitor(
    row: MonitorRow, locations: Sequence[MonitorLocationRow] = (), *, next_check_at: datetime | None = None
) -> Monitor:
    return Monitor(
        id=row.id,
        tenant_id=row.tenant_id,
        spec=msgspec.convert(row.spec, MonitorSpec),
        status=msgspec.convert(row.status, MonitorStatus),
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_check_at=next_check_at or row.next_check_at,
        ping_token=row.ping_token,
        heartbeat=None if row.heartbeat is None else msgspec.convert(row.heartbeat, HeartbeatState),
        location_states={location.location: msgspec.convert(location.status, MonitorStatus) for location in locations},
    )


def _location_rows(monitor_id: str, spec: MonitorSpec, next_check_at: datetime) -> list[MonitorLocationRow]:
    """Fresh rows of `spec`'s locations: each due at `next_check_at`, nothing confirmed yet."""
    return [
        MonitorLocationRow(
            monitor_id=monitor_id, location=location, next_check_at=next_check_at, status=_json(MonitorStatus())
        )
        for location in spec.locations or ()
    ]


async def _monitors(session: AsyncSession, rows: Sequence[MonitorRow]) -> list[Monitor]:
    """`rows` as monitors, those with locations with every location's status."""
    located = [row.id for row in rows if row.located]
    by_monitor: dict[str, list[MonitorLocationRow]] = {}
    if located:
        statement = select(MonitorLocationRow).where(MonitorLocationRow.monitor_id.in_(located))
        for location in (await session.execute(statement)).scalars():
            by_monitor.setdefault(location.monitor_id, []).append(location)
    monitors: list[Monitor] = []
    for row in rows:
        locations = by_monitor.get(row.id, [])
        # A located monitor is next due at the earliest of its locations' due times.
        due = min((location.next_check_at for location in locations), default=None)
        monitors.append(_monitor(row, locations, next_check_at=due))
    return monitors


def _json(value: msgspec.Struct) -> dict[str, Any]:
    return cast("dict[str, Any]", msgspec.to_builtins(value))


def _result(row: CheckResultRow) -> CheckResult:
    return CheckResult(
        id=row.id,
        monitor_id=row.monitor_id,
        tenant_id=row.tenant_id,
        at=row.at,
        location=row.location,
        ok=row.ok,
        latency_ms=row.latency_ms,
        error=row.error,
        status_code=row.status_code,
        in_maintenance=row.in_maintenance,
        due_at=row.due_at,
        started_at=row.started_at,
    )


def _outbox_row(alert: AlertEvent, created_at: datetime) -> AlertOutboxRow:
    return AlertOutboxRow(
        id=alert.id,
        tenant_id=alert.tenant_id,
        monitor_id=alert.rule_id,
        seq=uptime_alert_seq(alert.id),
        created_at=created_at,
        event=encode_event(alert).decode(),
    )


def _result_row(result: CheckResult) -> CheckResultRow:
    return CheckResultRow(
        id=result.id,
        monitor_id=result.monitor_id,
        tenant_id=result.tenant_id,
        at=result.at,
        location=result.location,
        ok=result.ok,
        latency_ms=result.latency_ms,
        error=None if result.error is None else result.error[:500],
        status_code=result.status_code,
        in_maintenance=result.in_maintenance,
        due_at=result.due_at,
        started_at=result.started_at,
    )


def _claim_statement(claim: CheckClaim) -> Any:
    """The compare-and-set `UPDATE` of one claim (of the monitor, or of its location's due time)."""
    if claim.location is None:
        return (
            update(MonitorRow)
            .where(
                MonitorRow.id == claim.monitor_id,
                MonitorRow.next_check_at == claim.seen,
                MonitorRow.paused.is_(False),
            )
            .values(next_check_at=claim.next_at)
        )
    return (
        update(MonitorLocationRow)
        .where(
            MonitorLocationRow.monitor_id == claim.monitor_id,
            MonitorLocationRow.location == claim.location,
            MonitorLocationRow.next_check_at == claim.seen,
        )
        .values(next_check_at=claim.next_at)
    )


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


class SqlMonitorStore:
    """`MonitorStore` on the tables of `models_uptime`, sharing the metadata store's engine."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    async def create_monitor(self, monitor: Monitor, *, max_per_tenant: int) -> Monitor:
        row = MonitorRow(
            id=monitor.id,
            tenant_id=monitor.tenant_id,
            spec=_json(monitor.spec),
            status=_json(monitor.status),
            paused=monitor.spec.paused,
            transition_seq=monitor.status.transition_seq,
            created_at=monitor.created_at,
            updated_at=monitor.updated_at,
            next_check_at=monitor.next_check_at,
            ping_token=monitor.ping_token,
            heartbeat=None if monitor.heartbeat is None else _json(monitor.heartbeat),
            located=bool(monitor.spec.locations),
        )
        count = select(func.count()).select_from(MonitorRow).where(MonitorRow.tenant_id == monitor.tenant_id)
        with database_errors((f"monitor {monitor.id!r} already exists", "monitor_exists")):
            async with self._metadata.session() as session, session.begin():
                if (await session.execute(count)).scalar_one() >= max_per_tenant:
                    raise Conflict(
                        f"this tenant already has {max_per_tenant} monitors, the most it may have; delete one first",
                        code="too_many_monitors",
                    )
                session.add(row)
                await session.flush()
                session.add_all(_location_rows(monitor.id, monitor.spec, monitor.next_check_at))
        return monitor

    async def get_monitor(self, tenant_id: str, monitor_id: str) -> Monitor | None:
        statement = select(MonitorRow).where(MonitorRow.tenant_id == tenant_id, MonitorRow.id == monitor_id)
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
                return None if row is None else (await _monitors(session, [row]))[0]

    async def list_monitors(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[Monitor]:
        statement = (
            select(MonitorRow)
            .where(MonitorRow.tenant_id == tenant_id)
            .order_by(MonitorRow.created_at, MonitorRow.id)
            .limit(limit)
        )
        if after is not None:
            created_at, monitor_id = after
            statement = statement.where(
                or_(
                    MonitorRow.created_at > created_at,
                    and_(MonitorRow.created_at == created_at, MonitorRow.id > monitor_id),
                )
            )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
                return await _monitors(session, rows)

    async def replace_monitor(
        self,
        tenant_id: str,
        monitor_id: str,
        spec: MonitorSpec,
        *,
        updated_at: datetime,
        next_check_at: datetime,
        status: MonitorStatus | None = None,
        alert: AlertEvent | None = None,
        ping_token: str | UnsetType | None = UNSET,
    ) -> Monitor | None:
        values: dict[str, Any] = {
            "spec": _json(spec),
            "paused": spec.paused,
            "updated_at": updated_at,
            "next_check_at": next_check_at,
            "located": bool(spec.locations),
        }
        if status is not None:
            values["status"] = _json(status)
            values["transition_seq"] = status.transition_seq
        if not isinstance(ping_token, UnsetType):
            values["ping_token"] = ping_token
        statement = (
            update(MonitorRow).where(MonitorRow.tenant_id == tenant_id, MonitorRow.id == monitor_id).values(**values)
        )
        with database_errors(("that ping token is in use", "ping_token_exists")):
            async with self._metadata.session() as session, session.begin():
                if _rowcount(await session.execute(statement)) != 1:
                    return None
                # Every change starts each location's confirmation again, due with the monitor.
                await session.execute(delete(MonitorLocationRow).where(MonitorLocationRow.monitor_id == monitor_id))
                session.add_all(_location_rows(monitor_id, spec, next_check_at))
                if status is not None:
                    # A pause or resume is a state change too: paused time is not counted in the SLA.
                    session.add(
                        StateChangeRow(
                            monitor_id=monitor_id,
                            seq=status.transition_seq,
                            tenant_id=tenant_id,
                            at=status.since or updated_at,
                            state=status.state,
                        )
                    )
                if alert is not None:
                    session.add(_outbox_row(alert, updated_at))
                row = await session.get(MonitorRow, monitor_id, populate_existing=True)
                return None if row is None else (await _monitors(session, [row]))[0]

    async def find_by_ping_token(self, ping_token: str) -> Monitor | None:
        statement = (
            select(MonitorRow)
            .join(TenantRow, TenantRow.id == MonitorRow.tenant_id)
            .where(
                MonitorRow.ping_token == ping_token,
                TenantRow.suspended.is_(False),
                TenantRow.deleted_at.is_(None),
            )
        )
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _monitor(row)

    async def record_ping(
        self,
        monitor_id: str,
        *,
        heartbeat: HeartbeatState,
        expected_seq: int,
        next_check_at: datetime | None = None,
        status: MonitorStatus | None = None,
        result: CheckResult | None = None,
        change: StateChangeRecord | None = None,
        alert: AlertEvent | None = None,
    ) -> bool:
        values: dict[str, Any] = {"heartbeat": _json(heartbeat)}
        if next_check_at is not None:
            values["next_check_at"] = next_check_at
        if status is not None:
            values["status"] = _json(status)
            values["transition_seq"] = status.transition_seq
        write = (
            update(MonitorRow)
            .where(
                MonitorRow.id == monitor_id,
                MonitorRow.transition_seq == expected_seq,
                MonitorRow.paused.is_(False),
            )
            .values(**values)
        )
        conflict = (f"ping result {result.id!r} already recorded", "result_exists") if result is not None else None
        with database_errors(conflict):
            async with self._metadata.session() as session, session.begin():
                row = await session.get(MonitorRow, monitor_id)
                if row is None or _rowcount(await session.execute(write)) != 1:
                    return False
                if result is not None:
                    session.add(_result_row(result))
                if change is not None and status is not None:
                    session.add(
                        StateChangeRow(
                            monitor_id=monitor_id,
                            seq=status.transition_seq,
                            tenant_id=row.tenant_id,
                            at=change.at,
                            state=change.state,
                        )
                    )
                if alert is not None:
                    session.add(_outbox_row(alert, alert.evaluated_at))
                return True

    async def delete_monitor(self, tenant_id: str, monitor_id: str, *, alert: AlertEvent | None = None) -> bool:
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                result = await session.execute(
                    delete(MonitorRow).where(MonitorRow.tenant_id == tenant_id, MonitorRow.id == monitor_id)
                )
                if _rowcount(result) != 1:
                    return False
                await session.execute(delete(CheckResultRow).where(CheckResultRow.monitor_id == monitor_id))
                await session.execute(delete(StateChangeRow).where(StateChangeRow.monitor_id == monitor_id))
                await session.execute(delete(MonitorLocationRow).where(MonitorLocationRow.monitor_id == monitor_id))
                if alert is not None:
                    session.add(_outbox_row(alert, alert.evaluated_at))
                return True

    async def due_monitors(self, now: datetime, *, limit: int, location: str) -> Sequence[Monitor]:
        active = (
            MonitorRow.paused.is_(False),
            TenantRow.suspended.is_(False),
            TenantRow.deleted_at.is_(None),
        )
        anywhere = (
            select(MonitorRow)
            .join(TenantRow, TenantRow.id == MonitorRow.tenant_id)
            .where(*active, MonitorRow.located.is_(False), MonitorRow.next_check_at <= now)
            .order_by(MonitorRow.next_check_at, MonitorRow.id)
            .limit(limit)
        )
        here = (
            select(MonitorRow, MonitorLocationRow.next_check_at)
            .join(TenantRow, TenantRow.id == MonitorRow.tenant_id)
            .join(MonitorLocationRow, MonitorLocationRow.monitor_id == MonitorRow.id)
            .where(*active, MonitorLocationRow.location == location, MonitorLocationRow.next_check_at <= now)
            .order_by(MonitorLocationRow.next_check_at, MonitorRow.id)
            .limit(limit)
        )
        with database_errors():
            async with self._metadata.session() as session:
                found = list(await _monitors(session, (await session.execute(anywhere)).scalars().all()))
                located = (await session.execute(here)).all()
                with_states = await _monitors(session, [row for row, _ in located])
                found += [
                    msgspec.structs.replace(monitor, next_check_at=due_at)
                    for monitor, (_, due_at) in zip(with_states, located, strict=True)
                ]
        found.sort(key=lambda monitor: (monitor.next_check_at, monitor.id))
        return found[:limit]

    async def claim_checks(self, claims: Sequence[CheckClaim]) -> set[str]:
        # One transaction (one commit, one fsync on SQLite) per poll rather than per monitor; rows are updated
        # in one order (by id) so that two instances claiming overlapping batches on PostgreSQL cannot deadlock.
        won: set[str] = set()
        if not claims:
            return won
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                for claim in sorted(claims, key=lambda claim: (claim.monitor_id, claim.location or "")):
                    if _rowcount(await session.execute(_claim_statement(claim))) == 1:
                        won.add(claim.monitor_id)
        return won

    async def record_check(
        self,
        monitor_id: str,
        result: CheckResult,
        status: MonitorStatus,
        *,
        expected_seq: int,
        change: StateChangeRecord | None,
        alert: AlertEvent | None = None,
    ) -> bool:
        write_status = (
            update(MonitorRow)
            .where(
                MonitorRow.id == monitor_id,
                MonitorRow.transition_seq == expected_seq,
                MonitorRow.paused.is_(False),
            )
            .values(status=_json(status), transition_seq=status.transition_seq)
        )
        with database_errors((f"check result {result.id!r} already recorded", "result_exists")):
            async with self._metadata.session() as session, session.begin():
                session.add(_result_row(result))
                if _rowcount(await session.execute(write_status)) != 1:
                    return False
                if change is not None:
                    session.add(
                        StateChangeRow(
                            monitor_id=monitor_id,
                            seq=status.transition_seq,
                            tenant_id=result.tenant_id,
                            at=change.at,
                            state=change.state,
                        )
                    )
                if alert is not None:
                    session.add(_outbox_row(alert, result.at))
                return True

    async def record_location_check(
        self,
        monitor_id: str,
        result: CheckResult,
        location_status: MonitorStatus,
        *,
        expected_seq: int,
        decide: QuorumDecider,
    ) -> LocatedDecision | None:
        # A no-op write first: it locks the monitor's row (PostgreSQL) or the database (SQLite) until the
        # commit, so two locations reporting at once are decided one after the other, each seeing the other's.
        lock = update(MonitorRow).where(MonitorRow.id == monitor_id).values(transition_seq=MonitorRow.transition_seq)
        mine = and_(MonitorLocationRow.monitor_id == monitor_id, MonitorLocationRow.location == result.location)
        with database_errors((f"check result {result.id!r} already recorded", "result_exists")):
            async with self._metadata.session() as session, session.begin():
                session.add(_result_row(result))
                if _rowcount(await session.execute(lock)) != 1:
                    return None
                row = await session.get(MonitorRow, monitor_id, populate_existing=True)
                if row is None or row.paused or row.transition_seq != expected_seq:
                    return None
                if (
                    _rowcount(
                        await session.execute(
                            update(MonitorLocationRow).where(mine).values(status=_json(location_status))
                        )
                    )
                    != 1
                ):
                    return None
                statement = select(MonitorLocationRow).where(MonitorLocationRow.monitor_id == monitor_id)
                states = {
                    location.location: msgspec.convert(location.status, MonitorStatus)
                    for location in (await session.execute(statement)).scalars()
                }
                states[result.location] = location_status
                decision = decide(msgspec.convert(row.status, MonitorStatus), states)
                row.status = _json(decision.status)
                row.transition_seq = decision.status.transition_seq
                if decision.change is not None:
                    session.add(
                        StateChangeRow(
                            monitor_id=monitor_id,
                            seq=decision.status.transition_seq,
                            tenant_id=result.tenant_id,
                            at=decision.change.at,
                            state=decision.change.state,
                        )
                    )
                if decision.alert is not None:
                    session.add(_outbox_row(decision.alert, result.at))
                return decision

    async def pending_alerts(self, *, monitor_id: str | None = None, limit: int = 100) -> Sequence[AlertEvent]:
        statement = select(AlertOutboxRow.event).limit(limit)
        if monitor_id is None:
            statement = statement.order_by(AlertOutboxRow.created_at, AlertOutboxRow.monitor_id, AlertOutboxRow.seq)
        else:
            statement = statement.where(AlertOutboxRow.monitor_id == monitor_id).order_by(AlertOutboxRow.seq)
        with database_errors():
            async with self._metadata.session() as session:
                encoded = (await session.execute(statement)).scalars().all()
        return [decode_alert_event(event.encode()) for event in encoded]

    async def mark_alerts_published(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                await session.execute(delete(AlertOutboxRow).where(AlertOutboxRow.id.in_(list(event_ids))))

    async def list_results(
        self,
        tenant_id: str,
        monitor_id: str,
        *,
        start: datetime,
        end: datetime,
        before: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> Sequence[CheckResult]:
        statement = (
            select(CheckResultRow)
            .where(
                CheckResultRow.tenant_id == tenant_id,
                CheckResultRow.monitor_id == monitor_id,
                CheckResultRow.at >= start,
                CheckResultRow.at < end,
            )
            .order_by(CheckResultRow.at.desc(), CheckResultRow.id.desc())
            .limit(limit)
        )
        if before is not None:
            at, result_id = before
            statement = statement.where(
                or_(CheckResultRow.at < at, and_(CheckResultRow.at == at, CheckResultRow.id < result_id))
            )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_result(row) for row in rows]

    async def list_state_changes(
        self, tenant_id: str, monitor_id: str, *, start: datetime, end: datetime
    ) -> Sequence[StateChangeRecord]:
        owned = and_(StateChangeRow.tenant_id == tenant_id, StateChangeRow.monitor_id == monitor_id)
        inside = select(StateChangeRow).where(owned, StateChangeRow.at >= start, StateChangeRow.at < end)
        earlier = (
            select(StateChangeRow)
            .where(owned, StateChangeRow.at < start)
            .order_by(StateChangeRow.at.desc(), StateChangeRow.seq.desc())
            .limit(1)
        )
        with database_errors():
            async with self._metadata.session() as session:
                rows = [
                    *(await session.execute(earlier)).scalars().all(),
                    *(await session.execute(inside.order_by(StateChangeRow.at, StateChangeRow.seq))).scalars().all(),
                ]
        return [
            StateChangeRecord(monitor_id=row.monitor_id, at=row.at, state=cast("MonitorState", row.state))
            for row in rows
        ]

    async def prune_results(self, older_than: datetime, *, limit: int = 1000) -> int:
        oldest = select(CheckResultRow.id).where(CheckResultRow.at < older_than).limit(limit)
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                ids = list((await session.execute(oldest)).scalars().all())
                if not ids:
                    return 0
                await session.execute(delete(CheckResultRow).where(CheckResultRow.id.in_(ids)))
        return len(ids)
