"""Tables of alerting: `alert_rules` and the evaluator's `alert_states` (migration 0004)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["AlertRuleRow", "AlertStateRow"]


class AlertRuleRow(Base):
    """One rule. `query`, `labels` and `channel_ids` are JSON; `next_evaluation_at` is the claim column: an
    evaluator takes a tick by moving it forward with a compare-and-set."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        Index("ix_alert_rules_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_alert_rules_due", "is_active", "next_evaluation_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    threshold: Mapped[float] = mapped_column(Float)
    comparator: Mapped[str] = mapped_column(String(8))
    window_seconds: Mapped[int] = mapped_column(Integer)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    for_seconds: Mapped[int] = mapped_column(Integer)
    keep_firing_for_seconds: Mapped[int] = mapped_column(Integer)
    group_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    severity: Mapped[str] = mapped_column(String(20))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text)
    channel_ids: Mapped[list[str]] = mapped_column(JSON)
    no_data: Mapped[str] = mapped_column(String(20))
    auto_resolve_incident: Mapped[bool] = mapped_column(Boolean)
    is_active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_evaluation_at: Mapped[datetime] = mapped_column(UtcDateTime())
    escalation_policy_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class AlertStateRow(Base):
    """The state of one group of one rule (see `mintlog.ports.alerting.AlertStateRecord`)."""

    __tablename__ = "alert_states"

    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True)
    group_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    group_values: Mapped[dict[str, str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(10))
    resume_state: Mapped[str] = mapped_column(String(10))
    since: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    pending_since: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_breach_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    transition_seq: Mapped[int] = mapped_column(Integer)
    last_event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    unpublished_event: Mapped[str | None] = mapped_column(Text, nullable=True)
