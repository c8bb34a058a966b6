"""`bfl_chat_send_read` / `bfl_chat_send_write`: a chat send's reads and its write over the
WebSocket, one round trip each (issue 17).

A message sent over the gateway took six round trips to PostgreSQL in a row before its
broadcast: `BEGIN` with the row scope, the event (its visibility and status), the tenant's row
scope again, the send's context (the room's modes, a ban, the tenant's settings), the INSERT and
`COMMIT`; with the cache's checks between them, they were most of a message's latency to its
viewers at 1,000 of them (bench/bench_fanout.py). These functions set the scope from their first
two arguments (as `bfl_go_live`, migration 0020) and run those statements, each in one round trip
in an implicit transaction: the reads (while the cache is asked, `chat.send_pg`), then the
INSERT, committed when it returns.

`bfl_chat_send_read` returns one row when the event is in the scope's rows (none otherwise):
what `can_view` and `can_moderate` read of the event, the room's modes (NULL: no room row, the
defaults), whether the user is banned from the event, and the tenant's settings.
`bfl_chat_send_write` inserts the message as the ORM would (`deleted_at`, `deleted_by` NULL).

SECURITY INVOKER (the default): row-level security applies to the caller. PostgreSQL only
(SQLite runs the ORM path, `chat.send.send_message`). A column added later to `chat_messages`
without a server default must be added here too.

Revision ID: 0027_chat_send_functions
Revises: 0026_go_live_many
Create Date: 2026-12-06 00:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027_chat_send_functions"
down_revision: str | Sequence[str] | None = "0026_go_live_many"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURES = (
    "bfl_chat_send_read(text, text, uuid, uuid)",
    "bfl_chat_send_write(text, text, uuid, uuid, uuid, uuid, text, text, uuid, timestamptz)",
)

CREATE_READ = """
CREATE FUNCTION bfl_chat_send_read(
    scope_tenant text, scope_platform text, p_event uuid, p_user uuid
) RETURNS TABLE (
    r_tenant uuid, r_owner uuid, r_playback text, r_visibility text, r_status text,
    r_version integer, r_publisher text, r_slow_mode integer, r_followers_only boolean,
    r_banned boolean, r_settings jsonb
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.tenant_id', scope_tenant, true),
            set_config('app.platform', scope_platform, true);
    RETURN QUERY
    SELECT e.tenant_id, e.owner_id, e.playback_id::text, e.visibility::text, e.status::text,
           e.version, e.publisher_id::text, r.slow_mode_seconds, r.followers_only,
           EXISTS (SELECT FROM chat_bans AS b
                    WHERE b.tenant_id = e.tenant_id AND b.event_id = e.id
                      AND b.user_id = p_user),
           t.settings::jsonb
      FROM events AS e
      LEFT JOIN tenants AS t ON t.id = e.tenant_id
      LEFT JOIN chat_rooms AS r ON r.tenant_id = e.tenant_id AND r.event_id = e.id
     WHERE e.id = p_event;
END
$$
"""

CREATE_WRITE = """
CREATE FUNCTION bfl_chat_send_write(
    scope_tenant text, scope_platform text, p_id uuid, p_tenant uuid, p_event uuid,
    p_user uuid, p_author text, p_body text, p_reply_to uuid, p_created_at timestamptz
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.tenant_id', scope_tenant, true),
            set_config('app.platform', scope_platform, true);
    INSERT INTO chat_messages (id, tenant_id, event_id, user_id, author_name, body,
                               reply_to_id, created_at, deleted_at, deleted_by)
    VALUES (p_id, p_tenant, p_event, p_user, p_author, p_body, p_reply_to, p_created_at,
            NULL, NULL);
    RETURN true;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE_READ)
        op.execute(CREATE_WRITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in SIGNATURES:
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
