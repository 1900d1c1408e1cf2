"""`SqlAlertRuleStore`: alert rules and states in the metadata database (SQLite or PostgreSQL).

Claims are one conditional `UPDATE … WHERE next_evaluation_at = :seen` (rowcount 1 wins), and state writes
compare `transition_seq` the same way, so two evaluators of one rule can never both record a transition.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from mintlog.adapters.db.models import TenantRow
from mintlog.adapters.db.models_alerting import AlertRuleRow, AlertStateRow
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.domain.alert_rules import AlertRule, AlertRuleSpec, RuleQuery
from mintlog.domain.alerting import AlertState
from mintlog.errors import Conflict
from mintlog.ports.alerting import AlertStateRecord, GroupState, StateWrite, TrackedState

__all__ = ["SqlAlertRuleStore"]


def _spec(row: AlertRuleRow) -> AlertRuleSpec:
    return AlertRuleSpec(
        name=row.name,
        description=row.description,
        query=msgspec.convert(row.query, RuleQuery),
        threshold=row.threshold,
        comparator=cast("Any", row.comparator),
        window_seconds=row.window_seconds,
        interval_seconds=row.interval_seconds,
        for_seconds=row.for_seconds,
        keep_firing_for_seconds=row.keep_firing_for_seconds,
        group_by=row.group_by,
        severity=cast("Any", row.severity),
        labels=dict(row.labels),
        message=row.message,
        channel_ids=list(row.channel_ids),
        no_data=cast("Any", row.no_data),
        auto_resolve_incident=row.auto_resolve_incident,
        is_active=row.is_active,
        escalation_policy_id=row.escalation_policy_id,
    )


def _rule(row: AlertRuleRow) -> AlertRule:
    return AlertRule(
        id=row.id,
        tenant_id=row.tenant_id,
        spec=_spec(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_evaluation_at=row.next_evaluation_at,
    )


def _spec_columns(spec: AlertRuleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "query": msgspec.to_builtins(spec.query),
        "threshold": spec.threshold,
        "comparator": spec.comparator,
        "window_seconds": spec.window_seconds,
        "interval_seconds": spec.interval_seconds,
        "for_seconds": spec.for_seconds,
        "keep_firing_for_seconds": spec.keep_firing_for_seconds,
        "group_by": spec.group_by,
        "severity": spec.severity,
        "labels": dict(spec.labels),
        "message": spec.message,
        "channel_ids": list(spec.channel_ids),
        "no_data": spec.no_data,
        "auto_resolve_incident": spec.auto_resolve_incident,
        "is_active": spec.is_active,
        "escalation_policy_id": spec.escalation_policy_id,
    }


def _record(row: AlertStateRow) -> AlertStateRecord:
    return AlertStateRecord(
        rule_id=row.rule_id,
        tenant_id=row.tenant_id,
        group_hash=row.group_hash,
        group=dict(row.group_values),
        machine=GroupState(
            state=cast("AlertState", row.state),
            resume_state=cast("TrackedState", row.resume_state),
            since=row.since,
            pending_since=row.pending_since,
            last_breach_at=row.last_breach_at,
            transition_seq=row.transition_seq,
        ),
        last_value=row.last_value,
        last_evaluated_at=row.last_evaluated_at,
        last_event_id=row.last_event_id,
        last_error=row.last_error,
        unpublished_event=None if row.unpublished_event is None else row.unpublished_event.encode(),
    )


def _state_columns(record: AlertStateRecord) -> dict[str, Any]:
    machine = record.machine
    return {
        "tenant_id": record.tenant_id,
        "group_values": dict(record.group),
        "state": machine.state,
        "resume_state": machine.resume_state,
        "since": machine.since,
        "pending_since": machine.pending_since,
        "last_breach_at": machine.last_breach_at,
        "last_value": record.last_value,
        "last_evaluated_at": record.last_evaluated_at,
        "transition_seq": machine.transition_seq,
        "last_event_id": record.last_event_id,
        "last_error": None if record.last_error is None else record.last_error[:500],
        "unpublished_event": None if record.unpublished_event is None else record.unpublished_event.decode(),
    }


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


class _LostRace(Exception):
    """A conditional write found the row changed: roll the whole transaction back."""


class SqlAlertRuleStore:
    """`AlertRuleStore` on the tables of `models_alerting`, sharing the metadata store's engine."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    # Rules

    async def create_rule(self, rule: AlertRule, *, max_rules_per_tenant: int) -> AlertRule:
        row = AlertRuleRow(
            id=rule.id,
            tenant_id=rule.tenant_id,
            created_at=rule.created_at,
            updated_at=rule.updated_at,
            next_evaluation_at=rule.next_evaluation_at,
            **_spec_columns(rule.spec),
        )
        count = select(func.count()).select_from(AlertRuleRow).where(AlertRuleRow.tenant_id == rule.tenant_id)
        with database_errors((f"alert rule {rule.id!r} already exists", "rule_exists")):
            async with self._metadata.session() as session, session.begin():
                if (await session.execute(count)).scalar_one() >= max_rules_per_tenant:
                    raise Conflict(
                        f"this tenant already has {max_rules_per_tenant} alert rules, the most it may have; "
                        "delete one first",
                        code="too_many_rules",
                    )
                session.add(row)
        return rule

    async def get_rule(self, tenant_id: str, rule_id: str) -> AlertRule | None:
        statement = select(AlertRuleRow).where(AlertRuleRow.tenant_id == tenant_id, AlertRuleRow.id == rule_id)
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _rule(row)

    async def list_rules(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[AlertRule]:
        statement = (
            select(AlertRuleRow)
            .where(AlertRuleRow.tenant_id == tenant_id)
            .order_by(AlertRuleRow.created_at, AlertRuleRow.id)
            .limit(limit)
        )
        if after is not None:
            created_at, rule_id = after
            statement = statement.where(
                or_(
                    AlertRuleRow.created_at > created_at,
                    and_(AlertRuleRow.created_at == created_at, AlertRuleRow.id > rule_id),
                )
            )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_rule(row) for row in rows]

    async def replace_rule(
        self, tenant_id: str, rule_id: str, spec: AlertRuleSpec, *, updated_at: datetime, next_evaluation_at: datetime
    ) -> AlertRule | None:
        statement = (
            update(AlertRuleRow)
            .where(AlertRuleRow.tenant_id == tenant_id, AlertRuleRow.id == rule_id)
            .values(updated_at=updated_at, next_evaluation_at=next_evaluation_at, **_spec_columns(spec))
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                if _rowcount(await session.execute(statement)) != 1:
                    return None
                row = await session.get(AlertRuleRow, rule_id, populate_existing=True)
                return None if row is None else _rule(row)

    async def delete_rule(self, tenant_id: str, rule_id: str) -> bool:
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                # Explicitly, not only by the foreign key: SQLite enforces it per connection.
                owned = select(AlertRuleRow.id).where(AlertRuleRow.tenant_id == tenant_id, AlertRuleRow.id == rule_id)
                await session.execute(delete(AlertStateRow).where(AlertStateRow.rule_id.in_(owned)))
                result = await session.execute(
                    delete(AlertRuleRow).where(AlertRuleRow.tenant_id == tenant_id, AlertRuleRow.id == rule_id)
                )
                return _rowcount(result) == 1

    # States

    async def list_states(self, tenant_id: str, rule_id: str) -> Sequence[AlertStateRecord]:
        statement = (
            select(AlertStateRow)
            .where(AlertStateRow.tenant_id == tenant_id, AlertStateRow.rule_id == rule_id)
            .order_by(AlertStateRow.group_hash)
        )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_record(row) for row in rows]

    # Scheduling

    async def due_rules(self, now: datetime, *, limit: int) -> Sequence[AlertRule]:
        statement = (
            select(AlertRuleRow)
            .join(TenantRow, TenantRow.id == AlertRuleRow.tenant_id)
            .where(
                AlertRuleRow.is_active.is_(True),
                AlertRuleRow.next_evaluation_at <= now,
                TenantRow.suspended.is_(False),
                TenantRow.deleted_at.is_(None),
            )
            .order_by(AlertRuleRow.next_evaluation_at, AlertRuleRow.id)
            .limit(limit)
        )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_rule(row) for row in rows]

    async def claim_evaluation(self, rule_id: str, *, seen: datetime, next_at: datetime) -> bool:
        statement = (
            update(AlertRuleRow)
            .where(AlertRuleRow.id == rule_id, AlertRuleRow.next_evaluation_at == seen)
            .values(next_evaluation_at=next_at)
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                return _rowcount(await session.execute(statement)) == 1

    async def save_states(self, rule_id: str, writes: Sequence[StateWrite]) -> bool:
        try:
            with database_errors():
                async with self._metadata.session() as session, session.begin():
                    exists = select(AlertRuleRow.id).where(AlertRuleRow.id == rule_id).with_for_update()
                    if (await session.execute(exists)).scalar_one_or_none() is None:
                        raise _LostRace
                    for write in writes:
                        await self._write(session, rule_id, write)
        except _LostRace:
            return False
        except Conflict:
            return False
        return True

    async def _write(self, session: Any, rule_id: str, write: StateWrite) -> None:
        record = write.record
        if write.expected_seq is None:
            session.add(AlertStateRow(rule_id=rule_id, group_hash=record.group_hash, **_state_columns(record)))
            try:
                await session.flush()
            except IntegrityError:
                raise _LostRace from None
            return
        statement = (
            update(AlertStateRow)
            .where(
                AlertStateRow.rule_id == rule_id,
                AlertStateRow.group_hash == record.group_hash,
                AlertStateRow.transition_seq == write.expected_seq,
            )
            .values(**_state_columns(record))
        )
        if _rowcount(await session.execute(statement)) != 1:
            raise _LostRace

    async def mark_published(self, rule_id: str, group_hash: str, event_id: str) -> None:
        statement = (
            update(AlertStateRow)
            .where(
                AlertStateRow.rule_id == rule_id,
                AlertStateRow.group_hash == group_hash,
                AlertStateRow.last_event_id == event_id,
            )
            .values(unpublished_event=None)
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                await session.execute(statement)
