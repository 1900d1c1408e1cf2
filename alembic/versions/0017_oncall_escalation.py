"""oncall_escalation: escalation policies, escalation runs and their due steps, one-click action links

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: reserved so parallel work keeps one linear chain of revisions."""


def downgrade() -> None:
    """Nothing yet."""
