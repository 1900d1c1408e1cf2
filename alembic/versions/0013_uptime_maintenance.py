"""uptime_maintenance: maintenance windows (one-off and RRULE) for monitors and alert rules

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `schedule` and `targets` are JSON documents (msgspec Structs of mintlog.domain.maintenance_windows).
    op.create_table(
        "uptime_maintenance_windows",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_uptime_maintenance_windows_tenant_created",
        "uptime_maintenance_windows",
        ["tenant_id", "created_at", "id"],
    )
    # A badge token is stored as its SHA-256 only; one badge per monitor.
    op.create_table(
        "uptime_badges",
        sa.Column(
            "monitor_id",
            sa.String(40),
            sa.ForeignKey("uptime_monitors.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("uptime_results") as batch:
        batch.add_column(sa.Column("in_maintenance", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("uptime_results") as batch:
        batch.drop_column("in_maintenance")
    op.drop_table("uptime_badges")
    op.drop_index("ix_uptime_maintenance_windows_tenant_created", "uptime_maintenance_windows")
    op.drop_table("uptime_maintenance_windows")
