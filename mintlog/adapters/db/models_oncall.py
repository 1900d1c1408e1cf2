"""Tables of on-call people and schedules (migration 0015): `oncall_people`, `oncall_schedules`,
`oncall_schedule_people` (who a schedule's layers name, so a person in use cannot be deleted) and
`oncall_overrides`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mintlog.adapters.db.models import Base, UtcDateTime

__all__ = ["OverrideRow", "PersonRow", "ScheduleMemberRow", "ScheduleRow"]


class PersonRow(Base):
    """One person; `document` is the `Person` without its id, tenant and times (JSON)."""

    __tablename__ = "oncall_people"
    __table_args__ = (Index("ix_oncall_people_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ScheduleRow(Base):
    """One schedule; `spec` is its `ScheduleSpec` (JSON). `ical_token_hash` is the SHA-256 of its feed token."""

    __tablename__ = "oncall_schedules"
    __table_args__ = (Index("ix_oncall_schedules_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ical_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    ical_token_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ScheduleMemberRow(Base):
    """A person named by a layer of a schedule (the foreign key keeps a person in use from being deleted)."""

    __tablename__ = "oncall_schedule_people"
    __table_args__ = (Index("ix_oncall_schedule_people_person", "person_id"),)

    schedule_id: Mapped[str] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("oncall_people.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))


class OverrideRow(Base):
    """`person_id` covers `[starts_at, ends_at)` on a schedule."""

    __tablename__ = "oncall_overrides"
    __table_args__ = (
        Index("ix_oncall_overrides_schedule_start", "schedule_id", "starts_at", "id"),
        Index("ix_oncall_overrides_schedule_end", "schedule_id", "ends_at"),
        Index("ix_oncall_overrides_person", "person_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    schedule_id: Mapped[str] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"))
    person_id: Mapped[str] = mapped_column(ForeignKey("oncall_people.id"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    note: Mapped[str] = mapped_column(String(500))
