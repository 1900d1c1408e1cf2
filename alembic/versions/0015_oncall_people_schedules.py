"""oncall_people_schedules: on-call people, schedules, layers and overrides

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # People and schedules keep their whole definition as JSON (msgspec Structs); the member and override rows
    # reference people without cascading, so a person a schedule still names cannot be deleted.
    op.create_table(
        "oncall_people",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_oncall_people_tenant_created", "oncall_people", ["tenant_id", "created_at", "id"])
    op.create_table(
        "oncall_schedules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ical_token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("ical_token_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_oncall_schedules_tenant_created", "oncall_schedules", ["tenant_id", "created_at", "id"])
    op.create_table(
        "oncall_schedule_people",
        sa.Column(
            "schedule_id",
            sa.String(40),
            sa.ForeignKey("oncall_schedules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("person_id", sa.String(40), sa.ForeignKey("oncall_people.id"), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
    )
    op.create_index("ix_oncall_schedule_people_person", "oncall_schedule_people", ["person_id"])
    op.create_table(
        "oncall_overrides",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column(
            "schedule_id", sa.String(40), sa.ForeignKey("oncall_schedules.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("person_id", sa.String(40), sa.ForeignKey("oncall_people.id"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
    )
    op.create_index("ix_oncall_overrides_schedule_start", "oncall_overrides", ["schedule_id", "starts_at", "id"])
    op.create_index("ix_oncall_overrides_schedule_end", "oncall_overrides", ["schedule_id", "ends_at"])
    op.create_index("ix_oncall_overrides_person", "oncall_overrides", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_oncall_overrides_person", "oncall_overrides")
    op.drop_index("ix_oncall_overrides_schedule_end", "oncall_overrides")
    op.drop_index("ix_oncall_overrides_schedule_start", "oncall_overrides")
    op.drop_table("oncall_overrides")
    op.drop_index("ix_oncall_schedule_people_person", "oncall_schedule_people")
    op.drop_table("oncall_schedule_people")
    op.drop_index("ix_oncall_schedules_tenant_created", "oncall_schedules")
    op.drop_table("oncall_schedules")
    op.drop_index("ix_oncall_people_tenant_created", "oncall_people")
    op.drop_table("oncall_people")
