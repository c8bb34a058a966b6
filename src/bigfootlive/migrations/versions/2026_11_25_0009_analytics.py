"""Analytics: per-minute roll-ups, distinct viewers, event summaries

Revision ID: 0009_analytics
Revises: 0008_jobs
Create Date: 2026-11-25 17:57:44.245650
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bigfootlive.db

revision: str = "0009_analytics"
down_revision: str | Sequence[str] | None = "0008_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "analytics_event_summaries",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("peak_viewers", sa.Integer(), nullable=False),
        sa.Column("peak_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unique_viewers", sa.Integer(), nullable=False),
        sa.Column("watch_ms", sa.BigInteger(), nullable=False),
        sa.Column("chat_messages", sa.Integer(), nullable=False),
        sa.Column("reactions", sa.Integer(), nullable=False),
        sa.Column("finalized_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_analytics_event_summaries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_analytics_event_summaries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_analytics_event_summaries")),
    )
    with op.batch_alter_table("analytics_event_summaries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_event_summaries_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "analytics_minutes",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("minute", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("viewers", sa.Integer(), nullable=False),
        sa.Column("views_started", sa.Integer(), nullable=False),
        sa.Column("views_ended", sa.Integer(), nullable=False),
        sa.Column("heartbeats", sa.Integer(), nullable=False),
        sa.Column("watch_ms", sa.BigInteger(), nullable=False),
        sa.Column("rebuffer_ms", sa.BigInteger(), nullable=False),
        sa.Column("rebuffer_events", sa.Integer(), nullable=False),
        sa.Column("startup_ms_sum", sa.BigInteger(), nullable=False),
        sa.Column("startup_samples", sa.Integer(), nullable=False),
        sa.Column("bitrate_kbps_sum", sa.BigInteger(), nullable=False),
        sa.Column("bitrate_samples", sa.Integer(), nullable=False),
        sa.Column("chat_messages", sa.Integer(), nullable=False),
        sa.Column("reactions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_analytics_minutes_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_analytics_minutes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "minute", name=op.f("pk_analytics_minutes")),
    )
    with op.batch_alter_table("analytics_minutes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_minutes_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "analytics_viewers",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("viewer", sa.String(length=80), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("watch_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_analytics_viewers_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_analytics_viewers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "viewer", name=op.f("pk_analytics_viewers")),
    )
    with op.batch_alter_table("analytics_viewers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_viewers_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("analytics_viewers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_viewers_tenant_id"))

    op.drop_table("analytics_viewers")
    with op.batch_alter_table("analytics_minutes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_minutes_tenant_id"))

    op.drop_table("analytics_minutes")
    with op.batch_alter_table("analytics_event_summaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_event_summaries_tenant_id"))

    op.drop_table("analytics_event_summaries")
