"""uptime_result_schedule: each check result records when it was due and when its probe started

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: results recorded before this migration, and heartbeat outcomes, have no schedule to compare with.
    with op.batch_alter_table("uptime_results") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uptime_results") as batch:
        batch.drop_column("started_at")
        batch.drop_column("due_at")
