"""Broadcast previews, DVR and clips (issue 19): events.dvr_window_seconds and poster_url,
recordings.poster_url, and the clips table.

Follows 0018 (simulcast destinations) on this branch; another branch may add a 0019 too, in
which case the lead renumbers / re-chains on merge.

Revision ID: 0019_previews_dvr_clips
Revises: 0018_simulcast_destinations
Create Date: 2026-12-02 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bigfootlive.db

revision: str = "0019_previews_dvr_clips"
down_revision: str | Sequence[str] | None = "0018_simulcast_destinations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The policy of migration 0017: the transaction's tenant, or the audited platform scope.
ISOLATION = (
    "current_setting('app.platform', true) = 'on' OR "
    "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
)


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dvr_window_seconds", sa.Integer(), nullable=False, server_default="1800")
        )
        batch_op.add_column(sa.Column("poster_url", sa.String(length=1024), nullable=True))
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("poster_url", sa.String(length=1024), nullable=True))
    op.create_table(
        "clips",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("start_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("start_seconds", sa.Double(), nullable=True),
        sa.Column("end_seconds", sa.Double(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.String(length=300), nullable=True),
        sa.Column("duration_seconds", sa.Double(), nullable=False),
        sa.Column("playback_url", sa.String(length=1024), nullable=True),
        sa.Column("poster_url", sa.String(length=1024), nullable=True),
        sa.Column("ready_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_clips_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_clips_event_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_clips_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clips")),
    )  # fmt: skip
    with op.batch_alter_table("clips", schema=None) as batch_op:
        for column in ("created_at", "event_id", "tenant_id"):
            batch_op.create_index(batch_op.f(f"ix_clips_{column}"), [column], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Row-level security like every tenant-owned table (migration 0017).
        op.execute("ALTER TABLE clips ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE clips FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON clips USING ({ISOLATION})")


def downgrade() -> None:
    with op.batch_alter_table("clips", schema=None) as batch_op:
        for column in ("tenant_id", "event_id", "created_at"):
            batch_op.drop_index(batch_op.f(f"ix_clips_{column}"))
    op.drop_table("clips")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("poster_url")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("poster_url")
        batch_op.drop_column("dvr_window_seconds")
