"""The archive manifest table (migration 0007)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["ArchiveObjectRow"]


class ArchiveObjectRow(Base):
    """One archive object. No foreign key to `tenants`: the archive outlives nothing it describes, and the
    retention job removes an object's row only after the object itself."""

    __tablename__ = "archive_objects"
    __table_args__ = (Index("ix_archive_objects_tenant_day", "tenant_id", "day"),)

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    hour: Mapped[int] = mapped_column(Integer)
    event_count: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    first_event_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_event_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
