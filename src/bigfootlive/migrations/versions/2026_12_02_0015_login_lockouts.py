"""Login lockouts keyed by (tenant, email address) for known and unknown addresses alike

Replaces users.failed_login_count / users.locked_until (accounts only; unknown addresses were
counted in the cache with a different clock, so the two could be told apart). Current counts
and locks move over.

Revision ID: 0015_login_lockouts
Revises: 0014_sso_metadata_refresh
Create Date: 2026-12-02 09:00:00
"""

import datetime as dt
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bigfootlive.db

revision: str = "0015_login_lockouts"
down_revision: str | Sequence[str] | None = "0014_sso_metadata_refresh"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The default LockoutPolicy.max_delay_seconds: how long a moved-over record is remembered.
_REMEMBER = dt.timedelta(seconds=3600)


def upgrade() -> None:
    lockouts = op.create_table(
        "login_lockouts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_login_lockouts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "email_hash", name=op.f("pk_login_lockouts")),
    )
    with op.batch_alter_table("login_lockouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_lockouts_expires_at"), ["expires_at"], unique=False
        )

    users = sa.table(
        "users",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("email", sa.String()),
        sa.column("failed_login_count", sa.Integer()),
        sa.column("locked_until", bigfootlive.db.UTCDateTime(timezone=True)),
    )
    now = dt.datetime.now(dt.UTC)
    rows = op.get_bind().execute(
        sa.select(
            users.c.tenant_id, users.c.email, users.c.failed_login_count, users.c.locked_until
        ).where(users.c.failed_login_count > 0)
    )
    moved = [
        {
            "tenant_id": tenant_id,
            "email_hash": hashlib.sha256(email.lower().encode()).hexdigest(),
            "failures": failures,
            "locked_until": locked_until,
            "expires_at": max(now, locked_until or now) + _REMEMBER,
        }
        for tenant_id, email, failures, locked_until in rows
    ]
    if moved:
        op.bulk_insert(lockouts, moved)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_login_count")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_login_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("locked_until", bigfootlive.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("login_lockouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_lockouts_expires_at"))
    op.drop_table("login_lockouts")
