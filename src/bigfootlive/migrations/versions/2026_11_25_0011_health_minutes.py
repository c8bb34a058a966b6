"""Analytics: stream health per event and minute

Revision ID: 0011_health_minutes
Revises: 0010_merge_heads
Create Date: 2026-11-25 20:16:06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bigfootlive.db

revision: str = "0011_health_minutes"
down_revision: str | Sequence[str] | None = "0010_merge_heads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_health_minutes",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("minute", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("ok_samples", sa.Integer(), nullable=False),
        sa.Column("degraded_samples", sa.Integer(), nullable=False),
        sa.Column("offline_samples", sa.Integer(), nullable=False),
        sa.Column("unknown_samples", sa.Integer(), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("bitrate_kbps_sum", sa.Double(), nullable=False),
        sa.Column("bitrate_samples", sa.Integer(), nullable=False),
        sa.Column("bitrate_kbps_min", sa.Double(), nullable=True),
        sa.Column("fps_sum", sa.Double(), nullable=False),
        sa.Column("fps_samples", sa.Integer(), nullable=False),
        sa.Column("fps_min", sa.Double(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("viewers_max", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_analytics_health_minutes_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_analytics_health_minutes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "minute", name=op.f("pk_analytics_health_minutes")),
    )
    with op.batch_alter_table("analytics_health_minutes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_health_minutes_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("analytics_health_minutes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_health_minutes_tenant_id"))

    op.drop_table("analytics_health_minutes")
