"""audit_log, tenants.deleted_at, api_keys.rotated_from

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: plain ALTER on PostgreSQL, a table copy on SQLite where ALTER cannot drop columns.
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rotated_from", sa.String(40), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("actor_tenant_id", sa.String(40), nullable=False),
        sa.Column("actor_key_id", sa.String(40), nullable=False),
        sa.Column("actor_key_prefix", sa.String(20), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_type", sa.String(40), nullable=False),
        sa.Column("target_id", sa.String(200), nullable=True),
        sa.Column("result", sa.String(10), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at", "id"])
    op.create_index("ix_audit_log_tenant_id", "audit_log", ["tenant_id", "occurred_at"])
    op.create_index("ix_audit_log_actor_tenant_id", "audit_log", ["actor_tenant_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor_tenant_id", table_name="audit_log")
    op.drop_index("ix_audit_log_tenant_id", table_name="audit_log")
    op.drop_index("ix_audit_log_occurred_at", table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rotated_from")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("deleted_at")
