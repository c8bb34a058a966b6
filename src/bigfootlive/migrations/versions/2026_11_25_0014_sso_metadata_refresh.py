"""SSO: status of the background IdP metadata refresh

Revision ID: 0014_sso_metadata_refresh
Revises: 0013_fixes_indexes
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bigfootlive.db

revision: str = "0014_sso_metadata_refresh"
down_revision: str | Sequence[str] | None = "0013_fixes_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sso_providers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "metadata_checked_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "metadata_refreshed_at", bigfootlive.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("metadata_refresh_status", sa.String(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column("metadata_refresh_error", sa.String(length=300), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sso_providers", schema=None) as batch_op:
        batch_op.drop_column("metadata_refresh_error")
        batch_op.drop_column("metadata_refresh_status")
        batch_op.drop_column("metadata_refreshed_at")
        batch_op.drop_column("metadata_checked_at")
