"""Tables of maintenance windows and monitor badges: `uptime_maintenance_windows`, `uptime_badges`
(migration 0013)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["BadgeRow", "MaintenanceWindowRow"]


class MaintenanceWindowRow(Base):
    """One maintenance window. `schedule` and `targets` are JSON (`MaintenanceWindow`, `WindowTargets`)."""

    __tablename__ = "uptime_maintenance_windows"
    __table_args__ = (Index("ix_uptime_maintenance_windows_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BadgeRow(Base):
    """The badge of one monitor: the SHA-256 of its token (the token itself is never stored)."""

    __tablename__ = "uptime_badges"

    monitor_id: Mapped[str] = mapped_column(ForeignKey("uptime_monitors.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
