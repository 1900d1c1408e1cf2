"""`SqlExtractionRuleStore`: extraction rules in the metadata database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update

from mintlog.adapters.db.models_parsing import ExtractionRuleRow
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.domain.extraction_rules import ExtractionRule, ExtractionRuleSpec, RuleKind
from mintlog.errors import Conflict

__all__ = ["SqlExtractionRuleStore"]


def _rule(row: ExtractionRuleRow) -> ExtractionRule:
    return ExtractionRule(
        id=row.id,
        tenant_id=row.tenant_id,
        spec=ExtractionRuleSpec(
            name=row.name,
            pattern=row.pattern,
            kind=cast("RuleKind", row.kind),
            timestamp_format=row.timestamp_format,
            service=row.service,
            description=row.description,
            enabled=row.enabled,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _columns(spec: ExtractionRuleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "pattern": spec.pattern,
        "kind": spec.kind,
        "timestamp_format": spec.timestamp_format,
        "service": spec.service,
        "description": spec.description,
        "enabled": spec.enabled,
    }


class SqlExtractionRuleStore:
    """`ExtractionRuleStore` on the `extraction_rules` table, sharing the metadata store's engine."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    async def create_rule(self, rule: ExtractionRule, *, max_rules_per_tenant: int) -> ExtractionRule:
        row = ExtractionRuleRow(
            id=rule.id,
            tenant_id=rule.tenant_id,
            created_at=rule.created_at,
            updated_at=rule.updated_at,
            **_columns(rule.spec),
        )
        count = select(func.count()).select_from(ExtractionRuleRow).where(ExtractionRuleRow.tenant_id == rule.tenant_id)
        with database_errors((f"extraction rule {rule.id!r} already exists", "rule_exists")):
            async with self._metadata.session() as session, session.begin():
                if (await session.execute(count)).scalar_one() >= max_rules_per_tenant:
                    raise Conflict(
                        f"this tenant already has {max_rules_per_tenant} extraction rules, the most it may have; "
                        "delete one first",
                        code="too_many_rules",
                    )
                session.add(row)
        return rule

    async def get_rule(self, tenant_id: str, rule_id: str) -> ExtractionRule | None:
        statement = select(ExtractionRuleRow).where(
            ExtractionRuleRow.tenant_id == tenant_id, ExtractionRuleRow.id == rule_id
        )
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _rule(row)

    async def list_rules(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int | None = None
    ) -> Sequence[ExtractionRule]:
        statement = (
            select(ExtractionRuleRow)
            .where(ExtractionRuleRow.tenant_id == tenant_id)
            .order_by(ExtractionRuleRow.created_at, ExtractionRuleRow.id)
        )
        if limit is not None:
            statement = statement.limit(limit)
        if after is not None:
            created_at, rule_id = after
            statement = statement.where(
                or_(
                    ExtractionRuleRow.created_at > created_at,
                    and_(ExtractionRuleRow.created_at == created_at, ExtractionRuleRow.id > rule_id),
                )
            )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_rule(row) for row in rows]

    async def replace_rule(
        self, tenant_id: str, rule_id: str, spec: ExtractionRuleSpec, *, updated_at: datetime
    ) -> ExtractionRule | None:
        statement = (
            update(ExtractionRuleRow)
            .where(ExtractionRuleRow.tenant_id == tenant_id, ExtractionRuleRow.id == rule_id)
            .values(updated_at=updated_at, **_columns(spec))
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                if cast("CursorResult[Any]", await session.execute(statement)).rowcount != 1:
                    return None
        return await self.get_rule(tenant_id, rule_id)

    async def delete_rule(self, tenant_id: str, rule_id: str) -> bool:
        statement = delete(ExtractionRuleRow).where(
            ExtractionRuleRow.tenant_id == tenant_id, ExtractionRuleRow.id == rule_id
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                return cast("CursorResult[Any]", await session.execute(statement)).rowcount == 1
