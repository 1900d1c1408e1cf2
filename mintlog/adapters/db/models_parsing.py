"""Tables of text parsing: `extraction_rules` (migration 0009; the tenant's `time_zone` is on `tenants`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["ExtractionRuleRow"]


class ExtractionRuleRow(Base):
    """One extraction rule of a tenant; a tenant's rules apply in (created_at, id) order."""

    __tablename__ = "extraction_rules"
    __table_args__ = (Index("ix_extraction_rules_tenant", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    pattern: Mapped[str] = mapped_column(Text)
    timestamp_format: Mapped[str | None] = mapped_column(String(100), nullable=True)
    service: Mapped[str | None] = mapped_column(String(256), nullable=True)
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
