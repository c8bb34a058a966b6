"""mfa: second factors (TOTP, passkeys, email, SMS) and backup codes

Revision ID: 0006_mfa
Revises: 0001_foundation
Create Date: 2026-11-25 17:30:01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bigfootlive.db

revision: str = "0006_mfa"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mfa_backup_codes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_mfa_backup_codes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mfa_backup_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_backup_codes")),
    )
    with op.batch_alter_table("mfa_backup_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mfa_backup_codes_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_mfa_backup_codes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "mfa_factors",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("credential_id", sa.String(length=1400), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(length=320), nullable=True),
        sa.Column("created_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_mfa_factors_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mfa_factors_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_factors")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_mfa_factors_credential_id")),
    )
    with op.batch_alter_table("mfa_factors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mfa_factors_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mfa_factors_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mfa_factors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mfa_factors_user_id"))
        batch_op.drop_index(batch_op.f("ix_mfa_factors_tenant_id"))

    op.drop_table("mfa_factors")
    with op.batch_alter_table("mfa_backup_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mfa_backup_codes_user_id"))
        batch_op.drop_index(batch_op.f("ix_mfa_backup_codes_tenant_id"))

    op.drop_table("mfa_backup_codes")
