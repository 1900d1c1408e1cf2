"""uptime_maintenance: maintenance windows (one-off and RRULE) for monitors and alert rules

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: reserved so parallel work keeps one linear chain of revisions."""


def downgrade() -> None:
    """Nothing yet."""
