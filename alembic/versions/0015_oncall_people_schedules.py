"""oncall_people_schedules: on-call people, schedules, layers and overrides

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: reserved so parallel work keeps one linear chain of revisions."""


def downgrade() -> None:
    """Nothing yet."""
