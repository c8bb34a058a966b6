"""`bfl_go_live_many`: the go-lives of one tenant's events in one call (issue 17).

The media server's first publishes arrive together (an encoder farm, a scheduled start, a
reconnect after a network cut). Each was a call of `bfl_go_live` of its own: a pooled
connection taken and given back, a round trip, a transaction and its commit. This function
takes the go-lives of concurrent publishes of ONE tenant (arrays of event ids, the status each
caller's snapshot expected, and each publisher's id), sets the row scope from its first two
arguments once, and runs `bfl_go_live`'s statement for each in turn, in one transaction: each
row as migration 0023 finds it (by the primary key alone, the tenant and the expected status
tested `IS TRUE`), with the same guard (no active webhook endpoint, no follower), the same
values, and `RETURNING e.*` of each event it changed. A caller whose event is not among the
rows changed nothing (as `bfl_go_live` returning no row). Callers of two tenants are never in
one call: a failure of one tenant's call is never another tenant's, and a transaction never
holds two tenants' rows. The caller passes each event id once. PostgreSQL only.

Revision ID: 0026_go_live_many
Revises: 0025_sign_in_functions
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026_go_live_many"
down_revision: str | Sequence[str] | None = "0025_sign_in_functions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION bfl_go_live_many(
    scope_tenant text, scope_platform text, p_tenant uuid, p_events uuid[], p_expected text[],
    p_publishers text[], p_now timestamptz
) RETURNS SETOF events LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.tenant_id', scope_tenant, true),
            set_config('app.platform', scope_platform, true);
    FOR i IN 1 .. coalesce(array_length(p_events, 1), 0) LOOP
        RETURN QUERY
        UPDATE events AS e
           SET status = 'live', version = e.version + 1, updated_at = p_now,
               publisher_id = p_publishers[i], went_live_at = coalesce(e.went_live_at, p_now),
               disconnected_at = NULL
         WHERE e.id = p_events[i]
           AND (e.tenant_id = p_tenant AND e.status = p_expected[i]) IS TRUE
           AND NOT EXISTS (SELECT 1 FROM webhook_endpoints w
                            WHERE w.tenant_id = e.tenant_id AND w.is_active)
           AND NOT EXISTS (SELECT 1 FROM follows f
                            WHERE f.tenant_id = e.tenant_id AND f.followee_id = e.owner_id)
        RETURNING e.*;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)  # SECURITY INVOKER: row-level security applies to the caller


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS bfl_go_live_many(text, text, uuid, uuid[], text[], text[], "
            "timestamptz)"
        )
