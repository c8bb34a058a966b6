"""Index events by end time (the hourly HLS-retention sweep)

Revision ID: 0013_fixes_indexes
Revises: 0012_job_outbox
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_fixes_indexes"
down_revision: str | Sequence[str] | None = "0012_job_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_ended_at"), ["ended_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_ended_at"))
