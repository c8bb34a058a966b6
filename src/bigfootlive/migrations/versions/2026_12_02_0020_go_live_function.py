"""`bfl_go_live`: the media server's publish as one statement in one round trip (issue 17).

The row scope of migration 0017 is a transaction-local setting; a statement in an implicit
transaction has no earlier statement to set it from. This function sets it from its first two
arguments and then runs the conditional UPDATE of `events.repository.GO_LIVE` (same guard:
only when the tenant has no active webhook endpoint and the owner no follower), so
`SELECT * FROM bfl_go_live(...)` is the whole durable change: one round trip, committed when
it returns. SECURITY INVOKER (the default): row-level security applies to the caller, who
could set the same scope with `set_config` anyway. PostgreSQL only (SQLite runs the Core
statement).

Follows 0019 on this branch; another branch may add a 0020 too, in which case the lead
renumbers / re-chains on merge.

Revision ID: 0020_go_live_function
Revises: 0019_previews_dvr_clips
Create Date: 2026-12-02 19:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_go_live_function"
down_revision: str | Sequence[str] | None = "0019_previews_dvr_clips"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "bfl_go_live(text, text, uuid, uuid, text, text, timestamptz)"

CREATE = """
CREATE FUNCTION bfl_go_live(
    scope_tenant text, scope_platform text, p_tenant uuid, p_event uuid, p_expected text,
    p_publisher text, p_now timestamptz
) RETURNS SETOF events LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.tenant_id', scope_tenant, true),
            set_config('app.platform', scope_platform, true);
    RETURN QUERY
    UPDATE events AS e
       SET status = 'live', version = e.version + 1, updated_at = p_now,
           publisher_id = p_publisher, went_live_at = coalesce(e.went_live_at, p_now),
           disconnected_at = NULL
     WHERE e.tenant_id = p_tenant AND e.id = p_event AND e.status = p_expected
       AND NOT EXISTS (SELECT 1 FROM webhook_endpoints w
                        WHERE w.tenant_id = e.tenant_id AND w.is_active)
       AND NOT EXISTS (SELECT 1 FROM follows f
                        WHERE f.tenant_id = e.tenant_id AND f.followee_id = e.owner_id)
    RETURNING e.*;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
