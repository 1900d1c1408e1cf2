"""oncall_escalation: escalation policies, escalation runs and their due steps, one-click action links

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# Actors grew from API key prefixes to `person:<id>` and `channel:<id>` (one-click links): 40 → 100.
_ACTOR_COLUMNS = (
    ("incidents", "acknowledged_by"),
    ("incidents", "resolved_by"),
    ("incident_timeline", "actor"),
)


def upgrade() -> None:
    op.create_table(
        "escalation_policies",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_escalation_policies_tenant_created", "escalation_policies", ["tenant_id", "created_at", "id"]
    )
    op.create_table(
        "escalation_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("policy_id", sa.String(40), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stop_reason", sa.String(200), nullable=True),
    )
    op.create_index("ix_escalation_runs_incident", "escalation_runs", ["tenant_id", "incident_id"], unique=True)
    op.create_table(
        "escalation_tasks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_escalation_tasks_due", "escalation_tasks", ["status", "due_at"])
    op.create_index("ix_escalation_tasks_run", "escalation_tasks", ["run_id", "status"])
    op.create_table(
        "escalation_link_uses",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "escalation_secrets",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    # Which policy escalates an incident, a rule's or a monitor's incidents (monitors keep it in their JSON spec).
    op.add_column("incidents", sa.Column("escalation_policy_id", sa.String(40), nullable=True))
    op.add_column("alert_rules", sa.Column("escalation_policy_id", sa.String(40), nullable=True))
    if op.get_bind().dialect.name == "postgresql":  # SQLite does not enforce lengths
        for table, column in _ACTOR_COLUMNS:
            op.alter_column(table, column, type_=sa.String(100), existing_type=sa.String(40))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _ACTOR_COLUMNS:
            op.alter_column(table, column, type_=sa.String(40), existing_type=sa.String(100))
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("escalation_policy_id")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("escalation_policy_id")
    op.drop_table("escalation_secrets")
    op.drop_table("escalation_link_uses")
    op.drop_index("ix_escalation_tasks_run", table_name="escalation_tasks")
    op.drop_index("ix_escalation_tasks_due", table_name="escalation_tasks")
    op.drop_table("escalation_tasks")
    op.drop_index("ix_escalation_runs_incident", table_name="escalation_runs")
    op.drop_table("escalation_runs")
    op.drop_index("ix_escalation_policies_tenant_created", table_name="escalation_policies")
    op.drop_table("escalation_policies")
