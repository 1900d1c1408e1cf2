"""notification_email_chat: email (SMTP) and chat-webhook channel types, and deliveries to people

Channels get `options` (the non-secret settings of an email channel, or a chat webhook's format). Deliveries
may go to a person instead of a channel: `channel_id` becomes nullable, `contact` records the person and the
contact method, and `dedup_key` (unique per tenant) makes the escalation engine's retries idempotent.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(sa.Column("options", sa.JSON(), nullable=True))
    with op.batch_alter_table("notification_deliveries") as batch:
        batch.alter_column("channel_id", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("person_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("contact", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("dedup_key", sa.String(500), nullable=True))
    op.create_index(
        "ux_notification_deliveries_dedup", "notification_deliveries", ["tenant_id", "dedup_key"], unique=True
    )
    op.create_index("ix_notification_deliveries_person", "notification_deliveries", ["tenant_id", "person_id"])


def downgrade() -> None:
    op.drop_index("ix_notification_deliveries_person", table_name="notification_deliveries")
    op.drop_index("ux_notification_deliveries_dedup", table_name="notification_deliveries")
    op.execute("DELETE FROM notification_deliveries WHERE channel_id IS NULL")
    with op.batch_alter_table("notification_deliveries") as batch:
        batch.drop_column("dedup_key")
        batch.drop_column("contact")
        batch.drop_column("person_id")
        batch.alter_column("channel_id", existing_type=sa.String(40), nullable=False)
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("options")
