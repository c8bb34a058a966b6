"""`bfl_users_first_page`: the member list's first page in one round trip (issue 17).

`GET /api/tenant/users` without a search, a filter or a cursor is the list's hot read. On
PostgreSQL it took three round trips: `BEGIN READ ONLY` with the row scope's `set_config`
calls (transaction-local, so they need a transaction), the statement, `COMMIT`. This function
sets the scope from its first two arguments and then runs the same statement as
`tenants.repository.first_page(..., USER_PAGE_COLUMNS)` (the tenant's members, newest first,
`p_rows` of them), so `SELECT * FROM bfl_users_first_page(...)` in an implicit transaction is
the whole read: one round trip. As `bfl_go_live` (migration 0020): SECURITY INVOKER (the
default), so row-level security applies to the caller, who could set the same scope with
`set_config` anyway; the settings end with the implicit transaction. PostgreSQL only (SQLite
runs the Core statement).

Revision ID: 0022_users_first_page_function
Revises: 0021_rotated_key_hash
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_users_first_page_function"
down_revision: str | Sequence[str] | None = "0021_rotated_key_hash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "bfl_users_first_page(text, text, uuid, integer)"

# The output columns are named r_* so that they cannot clash with the table's columns inside
# the function body (PL/pgSQL's OUT parameters are variables); the caller reads them by position.
CREATE = """
CREATE FUNCTION bfl_users_first_page(
    scope_tenant text, scope_platform text, p_tenant uuid, p_rows integer
) RETURNS TABLE (
    r_id uuid, r_email varchar, r_display_name varchar, r_role varchar, r_is_active boolean,
    r_email_verified boolean, r_created_at timestamptz, r_last_login_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.tenant_id', scope_tenant, true),
            set_config('app.platform', scope_platform, true);
    RETURN QUERY
    SELECT u.id, u.email, u.display_name, u.role, u.is_active,
           u.email_verified_at IS NOT NULL, u.created_at, u.last_login_at
      FROM users AS u
     WHERE u.tenant_id = p_tenant
     ORDER BY u.created_at DESC, u.id DESC
     LIMIT p_rows;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
