"""archive_manifest

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_objects",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("first_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_archive_objects_tenant_day", "archive_objects", ["tenant_id", "day"])
    # Null: the archive keeps the tenant's objects for MINTLOG_ARCHIVE__DEFAULT_RETENTION_DAYS (0: forever).
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("archive_retention_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("archive_retention_days")
    op.drop_index("ix_archive_objects_tenant_day", table_name="archive_objects")
    op.drop_table("archive_objects")
