"""events.rotated_key_hash: the previous stream key's lookup hash, kept while the publish that
used it is still running after a rotation (events.keys.rotate_stream_key).

nginx-rtmp names the stream by the key the encoder published with, so the running publisher's
`on_update` and `publish_done` keep arriving with the old key after a rotation. With this
column they are matched to the event, for that publisher only (its client id is the event's
`publisher_id`): the event is marked `reconnecting` by its `publish_done`, while a new publish
with the old key is refused. Cleared when that publisher leaves the event (unpublish, stop,
end), so it never outlives the publish it was kept for.

Revision ID: 0021_rotated_key_hash
Revises: 0020_go_live_function
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_rotated_key_hash"
down_revision: str | Sequence[str] | None = "0020_go_live_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rotated_key_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_events_rotated_key_hash"), ["rotated_key_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_rotated_key_hash"))
        batch_op.drop_column("rotated_key_hash")
