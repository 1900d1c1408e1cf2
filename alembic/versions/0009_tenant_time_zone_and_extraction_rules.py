"""tenant_time_zone_and_extraction_rules

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The zone of wall times written without an offset in the tenant's plain text logs (IANA name).
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"))
    op.create_table(
        "extraction_rules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("pattern", sa.Text(), nullable=False),
        sa.Column("timestamp_format", sa.String(100), nullable=True),
        sa.Column("service", sa.String(256), nullable=True),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_extraction_rules_tenant", "extraction_rules", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_extraction_rules_tenant", table_name="extraction_rules")
    op.drop_table("extraction_rules")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("time_zone")
