"""The extraction rule port: each tenant's rules for its plain text logs.

Implemented by `mintlog.adapters.db.parsing_sql.SqlExtractionRuleStore` (SQLite and PostgreSQL). Every
method raises `DatabaseUnavailable` when the database cannot be reached; a write is durable when it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from mintlog.domain.extraction_rules import ExtractionRule, ExtractionRuleSpec

__all__ = ["ExtractionRuleStore"]


class ExtractionRuleStore(Protocol):
    """Extraction rules of every tenant."""

    async def create_rule(self, rule: ExtractionRule, *, max_rules_per_tenant: int) -> ExtractionRule:
        """Store a new rule; raises `Conflict` (`too_many_rules`) when its tenant already has the maximum."""
        ...

    async def get_rule(self, tenant_id: str, rule_id: str) -> ExtractionRule | None:
        """The rule, or None when it does not exist or belongs to another tenant."""
        ...

    async def list_rules(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int | None = None
    ) -> Sequence[ExtractionRule]:
        """The tenant's rules in (created_at, id) order (the order they apply in), strictly after `after`;
        all of them when `limit` is None."""
        ...

    async def replace_rule(
        self, tenant_id: str, rule_id: str, spec: ExtractionRuleSpec, *, updated_at: datetime
    ) -> ExtractionRule | None:
        """Replace the rule's spec; None when it does not exist or belongs to another tenant."""
        ...

    async def delete_rule(self, tenant_id: str, rule_id: str) -> bool:
        """Delete the rule; False when it does not exist or belongs to another tenant."""
        ...
