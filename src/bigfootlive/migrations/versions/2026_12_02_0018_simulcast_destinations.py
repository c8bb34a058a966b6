"""Simulcast destinations: where a live event is restreamed (issue 19)

Numbered 0018 because another branch adds 0017 (row level security); on this branch it follows
0016 directly, and the lead renumbers / re-chains on merge.

Revision ID: 0018_simulcast_destinations
Revises: 0016_pending_registrations
Create Date: 2026-12-02 07:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bigfootlive.db

revision: str = "0018_simulcast_destinations"
down_revision: str | Sequence[str] | None = "0017_row_level_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The policy of migration 0017: the transaction's tenant, or the audited platform scope.
ISOLATION = (
    "current_setting('app.platform', true) = 'on' OR "
    "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
)


def upgrade() -> None:
    op.create_table(
        "simulcast_destinations",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("key_ciphertext", sa.String(length=1024), nullable=False),
        sa.Column("key_hint", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.String(length=300), nullable=True),
        sa.Column("state_changed_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_simulcast_destinations_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_simulcast_destinations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulcast_destinations")),
    )
    with op.batch_alter_table("simulcast_destinations", schema=None) as batch_op:
        for column in ("created_at", "event_id", "tenant_id"):
            batch_op.create_index(
                batch_op.f(f"ix_simulcast_destinations_{column}"), [column], unique=False
            )
    if op.get_bind().dialect.name == "postgresql":
        # Row-level security like every tenant-owned table (migration 0017).
        op.execute("ALTER TABLE simulcast_destinations ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE simulcast_destinations FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON simulcast_destinations USING ({ISOLATION})")


def downgrade() -> None:
    with op.batch_alter_table("simulcast_destinations", schema=None) as batch_op:
        for column in ("tenant_id", "event_id", "created_at"):
            batch_op.drop_index(batch_op.f(f"ix_simulcast_destinations_{column}"))
    op.drop_table("simulcast_destinations")
