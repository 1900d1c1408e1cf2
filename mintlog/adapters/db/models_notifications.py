"""Tables of notification channels and their deliveries (migrations 0005 and 0016)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["DeliveryRow", "NotificationChannelRow"]


class NotificationChannelRow(Base):
    __tablename__ = "notification_channels"
    __table_args__ = (Index("ix_notification_channels_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    channel_type: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(String(2048))
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(200))
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """An email channel's `EmailSettings`, or `{"format": …}` of a chat webhook; null for a webhook."""
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeliveryRow(Base):
    """One incident event for one channel, or one message for one person (`channel_id` null, `contact` and
    `dedup_key` set). The sender finds due work by (`status`, `next_attempt_at`) and
    expired claims by (`status`, `claim_expires_at`)."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_claims", "status", "claim_expires_at"),
        Index("ix_notification_deliveries_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_notification_deliveries_event", "tenant_id", "event_id"),
        Index("ux_notification_deliveries_dedup", "tenant_id", "dedup_key", unique=True),
        Index("ix_notification_deliveries_person", "tenant_id", "person_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_id: Mapped[str | None] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True, nullable=True
    )
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(60))
    incident_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    round_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    person_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    contact: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    dedup_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
