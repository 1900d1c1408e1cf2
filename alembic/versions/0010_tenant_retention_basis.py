"""tenant_retention_basis

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What a tenant's retention_days counts from: `event_time` (each event's timestamp, as before) or
    # `received_at` (when Mintlog received it, so imported history of any age is kept that long).
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("retention_basis", sa.String(20), nullable=False, server_default="event_time"))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("retention_basis")
