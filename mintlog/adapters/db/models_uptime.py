"""Tables of uptime monitoring: `uptime_monitors`, `uptime_results`, `uptime_state_changes` (migration 0011;
the heartbeat columns `ping_token` and `heartbeat`, migration 0012) and `uptime_alert_outbox` (0014);
`uptime_monitor_locations` and the column `located` (0018); the result columns `due_at` and `started_at` (0020)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["AlertOutboxRow", "CheckResultRow", "MonitorLocationRow", "MonitorRow", "StateChangeRow"]


class MonitorRow(Base):
    """One monitor. `spec` and `status` are JSON; `next_check_at` is the claim column (compare-and-set) and
    `transition_seq` (a copy of the status's) guards status writes. A heartbeat monitor has its unique
    `ping_token` and the JSON `heartbeat` state of its pings; other monitors have neither."""

    __tablename__ = "uptime_monitors"
    __table_args__ = (
        Index("ix_uptime_monitors_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_uptime_monitors_due", "paused", "next_check_at"),
        Index("ux_uptime_monitors_ping_token", "ping_token", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[dict[str, Any]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean)
    transition_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_check_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ping_token: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    heartbeat: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    located: Mapped[bool] = mapped_column(Boolean, default=False)  # migration 0018


class MonitorLocationRow(Base):
    """One location of a monitor that lists `locations`: its own claim column `next_check_at` (so each location
    checks once per interval) and the JSON `status` its checks confirmed (migration 0018)."""

    __tablename__ = "uptime_monitor_locations"
    __table_args__ = (Index("ix_uptime_monitor_locations_due", "location", "next_check_at"),)

    monitor_id: Mapped[str] = mapped_column(ForeignKey("uptime_monitors.id", ondelete="CASCADE"), primary_key=True)
    location: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_check_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[dict[str, Any]] = mapped_column(JSON)


class CheckResultRow(Base):
    """One check result (pruned after `MINTLOG_UPTIME__RESULT_RETENTION_DAYS`)."""

    __tablename__ = "uptime_results"
    __table_args__ = (
        Index("ix_uptime_results_monitor_at", "monitor_id", "at", "id"),
        Index("ix_uptime_results_at", "at"),
    )

    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    monitor_id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    location: Mapped[str] = mapped_column(String(100))
    ok: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    in_maintenance: Mapped[bool] = mapped_column(Boolean, default=False)  # migration 0013
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, default=None)  # migration 0020
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, default=None)  # migration 0020


class StateChangeRow(Base):
    """The `seq`-th confirmed state change of one monitor."""

    __tablename__ = "uptime_state_changes"

    monitor_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(20))


class AlertOutboxRow(Base):
    """An alert event of a monitor not yet on the bus (migration 0014): written with the status change that
    caused it, deleted once published. `event` is the encoded `AlertEvent`."""

    __tablename__ = "uptime_alert_outbox"
    __table_args__ = (
        Index("ix_uptime_alert_outbox_order", "created_at", "monitor_id", "seq"),
        Index("ix_uptime_alert_outbox_monitor", "monitor_id", "seq"),
    )

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    monitor_id: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    event: Mapped[str] = mapped_column(Text)
