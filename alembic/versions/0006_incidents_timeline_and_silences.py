"""incidents_timeline_and_silences

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OPEN = "status <> 'resolved' AND dedup_key IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("severity", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=True),
        sa.Column("rule_id", sa.String(100), nullable=True),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(40), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(40), nullable=True),
    )
    op.create_index("ix_incidents_tenant_created", "incidents", ["tenant_id", "created_at", "id"])
    op.create_index("ix_incidents_tenant_status", "incidents", ["tenant_id", "status", "created_at"])
    # One open incident per tenant and dedup key, even when alert events race (a partial unique index).
    op.create_index(
        "uq_incidents_open_dedup_key",
        "incidents",
        ["tenant_id", "dedup_key"],
        unique=True,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_table(
        "incident_timeline",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("incident_id", sa.String(40), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("event", sa.JSON(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("tenant_id", "source_id", name="uq_incident_timeline_source"),
    )
    op.create_index("ix_incident_timeline_incident", "incident_timeline", ["incident_id", "occurred_at", "id"])
    op.create_index("ix_incident_timeline_unpublished", "incident_timeline", ["published_at", "occurred_at"])
    op.create_table(
        "silences",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=True),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_silences_tenant_created", "silences", ["tenant_id", "created_at", "id"])
    op.create_index("ix_silences_tenant_ends", "silences", ["tenant_id", "ends_at"])


def downgrade() -> None:
    op.drop_index("ix_silences_tenant_ends", table_name="silences")
    op.drop_index("ix_silences_tenant_created", table_name="silences")
    op.drop_table("silences")
    op.drop_index("ix_incident_timeline_unpublished", table_name="incident_timeline")
    op.drop_index("ix_incident_timeline_incident", table_name="incident_timeline")
    op.drop_table("incident_timeline")
    op.drop_index("uq_incidents_open_dedup_key", table_name="incidents")
    op.drop_index("ix_incidents_tenant_status", table_name="incidents")
    op.drop_index("ix_incidents_tenant_created", table_name="incidents")
    op.drop_table("incidents")
