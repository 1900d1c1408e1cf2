"""alert_rules_and_states

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("comparator", sa.String(8), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("for_seconds", sa.Integer(), nullable=False),
        sa.Column("keep_firing_for_seconds", sa.Integer(), nullable=False),
        sa.Column("group_by", sa.String(200), nullable=True),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("no_data", sa.String(20), nullable=False),
        sa.Column("auto_resolve_incident", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_evaluation_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_rules_tenant_created", "alert_rules", ["tenant_id", "created_at", "id"])
    op.create_index("ix_alert_rules_due", "alert_rules", ["is_active", "next_evaluation_at"])
    op.create_table(
        "alert_states",
        sa.Column("rule_id", sa.String(40), sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("group_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("group_values", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("resume_state", sa.String(10), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_breach_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transition_seq", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.String(200), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("unpublished_event", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
    op.drop_index("ix_alert_rules_due", table_name="alert_rules")
    op.drop_index("ix_alert_rules_tenant_created", table_name="alert_rules")
    op.drop_table("alert_rules")
