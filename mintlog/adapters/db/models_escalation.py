"""Tables of escalation (migration 0017): `escalation_policies`, `escalation_runs`, `escalation_tasks` (the due
work: `due_at` with `claimed_by`/`claim_expires_at`), `escalation_link_uses` (used one-click tokens) and
`escalation_secrets` (the generated link secret); and (migration 0019) `oncall_routes`, each tenant's ordered
routes from severity and labels to a policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = [
    "EscalationPolicyRow",
    "EscalationRunRow",
    "EscalationSecretRow",
    "EscalationTaskRow",
    "LinkUseRow",
    "OnCallRoutesRow",
]


class EscalationPolicyRow(Base):
    """One policy; `spec` is its JSON document, `is_default` marks the tenant's default."""

    __tablename__ = "escalation_policies"
    __table_args__ = (Index("ix_escalation_policies_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_default: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EscalationRunRow(Base):
    """One incident's run (one per incident: the id derives from the incident's); `policy` is its snapshot."""

    __tablename__ = "escalation_runs"
    __table_args__ = (Index("ix_escalation_runs_incident", "tenant_id", "incident_id", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    incident_id: Mapped[str] = mapped_column(String(40))
    policy_id: Mapped[str] = mapped_column(String(40))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    cycle: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    stop_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class EscalationTaskRow(Base):
    """One due task; `status` is `pending` until it is `done` or `cancelled`. A pending task is due when
    `due_at` passed and it is unclaimed or its claim expired."""

    __tablename__ = "escalation_tasks"
    __table_args__ = (
        Index("ix_escalation_tasks_due", "status", "due_at"),
        Index("ix_escalation_tasks_run", "run_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(40))
    incident_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    cycle: Mapped[int] = mapped_column(Integer)
    step_index: Mapped[int] = mapped_column(Integer)
    repeat: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LinkUseRow(Base):
    """A one-click token that was used (its SHA-256): the primary key makes a second use fail."""

    __tablename__ = "escalation_link_uses"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    incident_id: Mapped[str] = mapped_column(String(40))
    used_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EscalationSecretRow(Base):
    """A generated secret shared by every instance (`link`: the one-click link key)."""

    __tablename__ = "escalation_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class OnCallRoutesRow(Base):
    """A tenant's routes: the ordered list as one JSON document (it is read and replaced whole)."""

    __tablename__ = "oncall_routes"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    routes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
