"""uptime_monitors

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `spec` and `status` are JSON documents (msgspec Structs); `next_check_at` is the claim column and
    # `transition_seq` guards status writes against a concurrent pause or edit.
    op.create_table(
        "uptime_monitors",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("transition_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_uptime_monitors_tenant_created", "uptime_monitors", ["tenant_id", "created_at", "id"])
    op.create_index("ix_uptime_monitors_due", "uptime_monitors", ["paused", "next_check_at"])
    op.create_table(
        "uptime_results",
        sa.Column("id", sa.String(60), primary_key=True),
        sa.Column("monitor_id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
    )
    op.create_index("ix_uptime_results_monitor_at", "uptime_results", ["monitor_id", "at", "id"])
    op.create_index("ix_uptime_results_at", "uptime_results", ["at"])
    op.create_table(
        "uptime_state_changes",
        sa.Column("monitor_id", sa.String(40), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("uptime_state_changes")
    op.drop_index("ix_uptime_results_at", "uptime_results")
    op.drop_index("ix_uptime_results_monitor_at", "uptime_results")
    op.drop_table("uptime_results")
    op.drop_index("ix_uptime_monitors_due", "uptime_monitors")
    op.drop_index("ix_uptime_monitors_tenant_created", "uptime_monitors")
    op.drop_table("uptime_monitors")
