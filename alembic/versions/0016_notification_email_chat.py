"""notification_email_chat: email (SMTP) and chat-webhook channel types

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: reserved so parallel work keeps one linear chain of revisions."""


def downgrade() -> None:
    """Nothing yet."""
