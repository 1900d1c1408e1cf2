"""Tables of incidents, their timelines and silences (migration 0006)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["IncidentRow", "SilenceRow", "TimelineEntryRow"]

OPEN_DEDUP_INDEX = "uq_incidents_open_dedup_key"
"""The partial unique index that keeps one open incident per tenant and dedup key."""


class IncidentRow(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_incidents_tenant_status", "tenant_id", "status", "created_at"),
        Index(
            OPEN_DEDUP_INDEX,
            "tenant_id",
            "dedup_key",
            unique=True,
            sqlite_where=text("status <> 'resolved' AND dedup_key IS NOT NULL"),
            postgresql_where=text("status <> 'resolved' AND dedup_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    severity: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    dedup_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    rule_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    channel_ids: Mapped[list[str]] = mapped_column(JSON)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    escalation_policy_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class TimelineEntryRow(Base):
    """Append-only. `source_id` (the alert event id, or the entry's own id for API changes) is unique per tenant,
    which makes a redelivered alert event find its entry; `published_at` null marks an event still to publish."""

    __tablename__ = "incident_timeline"
    __table_args__ = (
        Index("ix_incident_timeline_incident", "incident_id", "occurred_at", "id"),
        Index("ix_incident_timeline_unpublished", "published_at", "occurred_at"),
        UniqueConstraint("tenant_id", "source_id", name="uq_incident_timeline_source"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    event_type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_id: Mapped[str] = mapped_column(String(255))
    event: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SilenceRow(Base):
    __tablename__ = "silences"
    __table_args__ = (
        Index("ix_silences_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_silences_tenant_ends", "tenant_id", "ends_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    rule_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    matchers: Mapped[dict[str, str]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
