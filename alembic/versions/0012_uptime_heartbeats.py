"""uptime_heartbeats: heartbeat monitors: ping tokens, pings, deadlines

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: reserved so parallel work keeps one linear chain of revisions."""


def downgrade() -> None:
    """Nothing yet."""
