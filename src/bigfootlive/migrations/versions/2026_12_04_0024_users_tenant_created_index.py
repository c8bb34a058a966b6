"""`ix_users_tenant_created`: the member list in its own order, read from an index (issue 17).

`GET /api/tenant/users` lists a tenant's members newest first (`ORDER BY created_at DESC, id
DESC`, then `LIMIT`), and its later pages continue from a `(created_at, id)` cursor. With only
`ix_users_tenant_id`, PostgreSQL read every member of the tenant, checked the row-level security
policy on each, and sorted them to keep the first 51: with 1,000 members that was ~0.45 ms of
the database's CPU for every first page (EXPLAIN ANALYZE: Index Scan on ix_users_tenant_id, 1,000
rows, top-N heapsort), and it grows with the tenant. With `(tenant_id, created_at, id)` the page
is a backward index scan that stops after 51 rows (~0.06 ms, whatever the tenant's size), and a
cursor's page starts where the cursor points. Both databases (SQLite plans the same way).

Revision ID: 0024_users_tenant_created_index
Revises: 0023_go_live_by_primary_key
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024_users_tenant_created_index"
down_revision: str | Sequence[str] | None = "0023_go_live_by_primary_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_users_tenant_created", "users", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_users_tenant_created", table_name="users")
