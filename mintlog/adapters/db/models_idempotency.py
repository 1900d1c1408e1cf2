"""The ingest idempotency table (migration 0008)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["IdempotencyKeyRow"]


class IdempotencyKeyRow(Base):
    """One `Idempotency-Key` of a tenant (`mintlog.ports.idempotency.IdempotencyRecord`). No foreign key to
    `tenants`: a row lives for the idempotency window only and is deleted by the sweep once expired."""

    __tablename__ = "ingest_idempotency_keys"
    __table_args__ = (Index("ix_ingest_idempotency_keys_expires_at", "expires_at"),)

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answer: Mapped[bytes] = mapped_column(LargeBinary)
    completed: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
