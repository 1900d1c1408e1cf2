"""uptime_heartbeats: heartbeat monitors: ping tokens, pings, deadlines

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A heartbeat monitor's secret ping token (unique: a ping names its monitor by it alone) and the JSON state
    # its pings left (last ping, last start, last run's duration). Its deadline is the existing claim column
    # `next_check_at`. Both are NULL for probed monitors; NULLs do not collide in a unique index.
    with op.batch_alter_table("uptime_monitors") as batch:
        batch.add_column(sa.Column("ping_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("heartbeat", sa.JSON(), nullable=True))
    op.create_index("ux_uptime_monitors_ping_token", "uptime_monitors", ["ping_token"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_uptime_monitors_ping_token", "uptime_monitors")
    with op.batch_alter_table("uptime_monitors") as batch:
        batch.drop_column("heartbeat")
        batch.drop_column("ping_token")
