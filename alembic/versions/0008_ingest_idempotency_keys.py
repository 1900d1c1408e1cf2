"""ingest_idempotency_keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_idempotency_keys",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("key_sha256", sa.String(64), primary_key=True),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.LargeBinary(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ingest_idempotency_keys_expires_at", "ingest_idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_idempotency_keys_expires_at", table_name="ingest_idempotency_keys")
    op.drop_table("ingest_idempotency_keys")
