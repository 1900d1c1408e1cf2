"""uptime_locations: monitors checked from several locations, each with its own due time and confirmed state

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A monitor listing `locations` is claimed per location (its rows below), never by its own `next_check_at`.
    with op.batch_alter_table("uptime_monitors") as batch:
        batch.add_column(sa.Column("located", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "uptime_monitor_locations",
        sa.Column(
            "monitor_id",
            sa.String(40),
            sa.ForeignKey("uptime_monitors.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("location", sa.String(100), primary_key=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_uptime_monitor_locations_due", "uptime_monitor_locations", ["location", "next_check_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_uptime_monitor_locations_due", table_name="uptime_monitor_locations")
    op.drop_table("uptime_monitor_locations")
    with op.batch_alter_table("uptime_monitors") as batch:
        batch.drop_column("located")
