"""Row-level security on every tenant-owned table (PostgreSQL only)

Each table with a `tenant_id` column gets a `tenant_isolation` policy: a row is visible and
writable only when its `tenant_id` is the transaction's `app.tenant_id` setting, or when the
transaction runs in the platform scope (`app.platform = 'on'`). Both settings are set by the
application with `set_config(..., true)`, so they last for one transaction (see
`bigfootlive.db`'s row scope). FORCE applies the policies to the tables' owner as well, so a
deployment that connects with the role that ran the migrations is still walled; only a
superuser or a role with BYPASSRLS escapes them (the application refuses such a role in
production, see README "Row-level security").

`audit_records` also accepts a row without a tenant (a failed sign-in for an unknown tenant),
which only the platform scope can read back.

SQLite has no row-level security: there the `scoped()` helper is the only wall.

Revision ID: 0017_row_level_security
Revises: 0016_pending_registrations
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_row_level_security"
down_revision: str | Sequence[str] | None = "0016_pending_registrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table with a tenant_id column at this revision (a later migration that adds one must
# add its policy too; tests/test_row_level_security.py fails otherwise).
TENANT_TABLES = (
    "analytics_event_summaries",
    "analytics_health_minutes",
    "analytics_minutes",
    "analytics_viewers",
    "api_keys",
    "audit_records",
    "auth_sessions",
    "chat_bans",
    "chat_messages",
    "chat_rooms",
    "event_containers",
    "events",
    "follows",
    "login_lockouts",
    "mfa_backup_codes",
    "mfa_factors",
    "notification_preferences",
    "pending_registrations",
    "recordings",
    "sso_identities",
    "sso_providers",
    "tenant_domains",
    "user_tokens",
    "users",
    "webhook_deliveries",
    "webhook_endpoints",
)

PLATFORM = "current_setting('app.platform', true) = 'on'"
SAME_TENANT = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TENANT_TABLES:
        using = f"{PLATFORM} OR {SAME_TENANT}"
        check = f"{using} OR tenant_id IS NULL" if table == "audit_records" else using
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({using}) WITH CHECK ({check})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
