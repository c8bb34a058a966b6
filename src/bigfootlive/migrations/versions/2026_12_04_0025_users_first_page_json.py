"""`bfl_users_first_page_json`: the member list's first page as the response's JSON (issue 17).

Like `bfl_users_first_page` (migration 0022): sets the row scope from its first two arguments
and reads the tenant's newest `p_limit + 1` members in one round trip, SECURITY INVOKER, so
row-level security applies to the caller. It returns one row: the page's `items` array as the
API's JSON text, byte for byte what `kit.fastjson` gives for the same rows (`TenantUserOut`'s
fields in order, UUIDs as text, UTC datetimes in ISO 8601 with `Z` and microseconds only when
there are some, strings escaped by `to_json`), whether a next page exists, and the
`(created_at, id)` of the page's last member for its cursor. PostgreSQL only.

Revision ID: 0025_users_first_page_json
Revises: 0024_users_tenant_created_index
Create Date: 2026-12-04 16:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025_users_first_page_json"
down_revision: str | Sequence[str] | None = "0024_users_tenant_created_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "bfl_users_first_page_json(text, text, uuid, integer)"


def _utc(column: str) -> str:
    """A timestamptz as orjson's OPT_UTC_Z writes it (without the quotes)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, CASE WHEN date_trunc('second', {utc}) = {utc}"
        ' THEN \'YYYY-MM-DD"T"HH24:MI:SS"Z"\' ELSE \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\' END)'
    )


ITEM = f"""'{{"id":"' || p.id::text
           || '","email":' || to_json(p.email::text)::text
           || ',"display_name":' || to_json(p.display_name::text)::text
           || ',"role":' || to_json(p.role::text)::text
           || ',"is_active":' || CASE WHEN p.is_active THEN 'true' ELSE 'false' END
           || ',"email_verified":'
           || CASE WHEN p.email_verified_at IS NULL THEN 'false' ELSE 'true' END
           || ',"created_at":"' || {_utc("p.created_at")}
           || '","last_login_at":' || coalesce('"' || {_utc("p.last_login_at")} || '"', 'null')
           || '}}'"""

CREATE = f"""
CREATE FUNCTION bfl_users_first_page_json(
    scope_tenant text, scope_platform text, p_tenant uuid, p_limit integer
) RETURNS TABLE (
    r_items text, r_more boolean, r_last_created_at timestamptz, r_last_id uuid
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.tenant_id', scope_tenant, true),
            set_config('app.platform', scope_platform, true);
    RETURN QUERY
    WITH page AS (
        SELECT u.id, u.email, u.display_name, u.role, u.is_active, u.email_verified_at,
               u.created_at, u.last_login_at,
               row_number() OVER (ORDER BY u.created_at DESC, u.id DESC) AS n
          FROM users AS u
         WHERE u.tenant_id = p_tenant
         ORDER BY u.created_at DESC, u.id DESC
         LIMIT p_limit + 1
    )
    SELECT '[' || coalesce(string_agg({ITEM}, ',' ORDER BY p.n) FILTER (WHERE p.n <= p_limit), '')
           || ']',
           count(*) > p_limit,
           max(p.created_at) FILTER (WHERE p.n = p_limit),
           (array_agg(p.id) FILTER (WHERE p.n = p_limit))[1]
      FROM page AS p;
END
$$
"""  # noqa: S608 - built from this module's constants only


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
