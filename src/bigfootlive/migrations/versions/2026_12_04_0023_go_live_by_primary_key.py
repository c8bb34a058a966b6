"""`bfl_go_live` finds the event by its primary key whatever the statistics say (issue 17).

The conditional UPDATE of migration 0020 named the row by `tenant_id`, `id` and `status`, all
three usable as index conditions. On a table never analyzed (a new database, or a server run
with autovacuum off), PostgreSQL costed `ix_events_tenant_status_created (tenant_id, status)`
a hair below `pk_events` and took it: every publish walked all of the tenant's `ready` events
and filtered them by id (3,000 rows, ~1.5 ms, for a tenant with 3,000 armed events; measured
with EXPLAIN (ANALYZE, BUFFERS)). Here the tenant and the expected status are one condition
tested `IS TRUE`, which no index can answer, so the only access path left is the primary key
(one row, four buffers); the condition is still part of the UPDATE's WHERE, so a concurrent
change is re-checked against it as before (a second publisher finds `live` and changes
nothing). Same signature, same result rows, same guard (no active webhook endpoint, no
follower), same row scope from the first two arguments. PostgreSQL only.

Revision ID: 0023_go_live_by_primary_key
Revises: 0022_users_first_page_function
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_go_live_by_primary_key"
down_revision: str | Sequence[str] | None = "0022_users_first_page_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
CREATE OR REPLACE FUNCTION bfl_go_live(
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
     WHERE {where}
       AND NOT EXISTS (SELECT 1 FROM webhook_endpoints w
                        WHERE w.tenant_id = e.tenant_id AND w.is_active)
       AND NOT EXISTS (SELECT 1 FROM follows f
                        WHERE f.tenant_id = e.tenant_id AND f.followee_id = e.owner_id)
    RETURNING e.*;
END
$$
"""

# `IS TRUE`: not an index condition, so the row is found by `pk_events` alone.
BY_PRIMARY_KEY = _FUNCTION.format(
    where="e.id = p_event AND (e.tenant_id = p_tenant AND e.status = p_expected) IS TRUE"
)
# Migration 0020's statement.
BY_THREE_COLUMNS = _FUNCTION.format(
    where="e.tenant_id = p_tenant AND e.id = p_event AND e.status = p_expected"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(BY_PRIMARY_KEY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(BY_THREE_COLUMNS)
