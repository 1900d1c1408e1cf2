"""uptime_alert_outbox: outbox of uptime state changes so an AlertEvent survives a crash

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per alert event of a monitor, written in the transaction that stores the monitor's status and
    # deleted once the event is on the bus. No foreign key to the monitor: a delete's own event outlives it.
    op.create_table(
        "uptime_alert_outbox",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("monitor_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
    )
    op.create_index("ix_uptime_alert_outbox_order", "uptime_alert_outbox", ["created_at", "monitor_id", "seq"])
    op.create_index("ix_uptime_alert_outbox_monitor", "uptime_alert_outbox", ["monitor_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_uptime_alert_outbox_monitor", "uptime_alert_outbox")
    op.drop_index("ix_uptime_alert_outbox_order", "uptime_alert_outbox")
    op.drop_table("uptime_alert_outbox")
