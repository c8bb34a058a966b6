"""`bfl_sign_in_read` / `bfl_sign_in_write`: a password sign-in's read and write, one round
trip each (issue 17).

A password sign-in on PostgreSQL took four round trips in one transaction held open across the
argon2 hash (tens of milliseconds, more while the hashing pool is busy): `BEGIN` with the row
scope's `set_config` calls, the read (account, lockout record, usable factor count), the write
(session, refresh token, audit record, `last_login_at`, lockout record cleared) and `COMMIT`.
These functions set the scope from their first two arguments (as `bfl_go_live`, migration 0020)
and then run those statements, so each is one round trip in an implicit transaction and no
connection is held while the password is hashed.

`bfl_sign_in_write` writes only while the account is as the read found it: still active, the
same password hash (the UPDATE of `last_login_at` is its guard, and takes the row lock a
password change or a deactivation also takes, so one that commits after it still ends the new
session). It returns false, having changed nothing, when the account changed during the hash.

SECURITY INVOKER (the default): row-level security applies to the caller. PostgreSQL only
(SQLite runs the ORM path). A column added later to `auth_sessions`, `refresh_tokens` or
`audit_records` without a server default must be added here too.

Revision ID: 0025_sign_in_functions
Revises: 0024_users_tenant_created_index
Create Date: 2026-12-04 15:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025_sign_in_functions"
down_revision: str | Sequence[str] | None = "0024_users_tenant_created_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURES = (
    "bfl_sign_in_read(text, text, uuid, text, text, text[])",
    "bfl_sign_in_write(text, text, uuid, uuid, text, timestamptz, timestamptz, text, uuid, text,"
    " text, text, timestamptz, uuid, text, uuid, text, jsonb)",
)

# One row whether or not the account or the lockout record exists (the account NULL when it
# does not). r_factors: the account's confirmed factors of p_factor_types (NULL: not asked).
CREATE_READ = """
CREATE FUNCTION bfl_sign_in_read(
    scope_tenant text, scope_platform text, p_tenant uuid, p_email text, p_email_hash text,
    p_factor_types text[]
) RETURNS TABLE (
    r_user users, r_lockout boolean, r_locked_until timestamptz, r_factors bigint
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.tenant_id', scope_tenant, true),
            set_config('app.platform', scope_platform, true);
    RETURN QUERY
    SELECT u, l.email_hash IS NOT NULL, l.locked_until,
           CASE WHEN p_factor_types IS NULL OR u.id IS NULL THEN NULL ELSE
               (SELECT count(*) FROM mfa_factors AS f
                 WHERE f.tenant_id = p_tenant AND f.user_id = u.id
                   AND f.confirmed_at IS NOT NULL AND f.type = ANY (p_factor_types))
           END
      FROM (SELECT 1) AS one_row
      LEFT JOIN users AS u ON u.tenant_id = p_tenant AND u.email = p_email
      LEFT JOIN login_lockouts AS l
             ON l.tenant_id = p_tenant AND l.email_hash = p_email_hash;
END
$$
"""

CREATE_WRITE = """
CREATE FUNCTION bfl_sign_in_write(
    scope_tenant text, scope_platform text,
    p_tenant uuid, p_user uuid, p_password_hash text, p_signed_in_at timestamptz,
    p_now timestamptz, p_clear_lockout text,
    p_session uuid, p_user_agent text, p_ip text, p_amr text, p_expires_at timestamptz,
    p_token uuid, p_token_hash text,
    p_audit uuid, p_request_id text, p_details jsonb
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    written boolean;
BEGIN
    PERFORM set_config('app.tenant_id', scope_tenant, true),
            set_config('app.platform', scope_platform, true);
    -- One statement (data-modifying CTEs, foreign keys checked at its end): measured less
    -- database CPU per sign-in in a login storm than five; nothing is written unless the
    -- account's UPDATE found it as read.
    WITH account AS (
        UPDATE users SET last_login_at = p_signed_in_at, updated_at = p_now
         WHERE id = p_user AND tenant_id = p_tenant AND is_active
           AND password_hash IS NOT DISTINCT FROM p_password_hash
        RETURNING id
    ), cleared AS (
        DELETE FROM login_lockouts
         WHERE p_clear_lockout IS NOT NULL AND tenant_id = p_tenant
           AND email_hash = p_clear_lockout AND EXISTS (SELECT FROM account)
    ), new_session AS (
        INSERT INTO auth_sessions (id, tenant_id, user_id, user_agent, ip, amr, auth_time,
                                   created_at, last_seen_at, expires_at, revoked_at,
                                   revoked_reason)
        SELECT p_session, p_tenant, id, p_user_agent, p_ip, p_amr, p_now, p_now, p_now,
               p_expires_at, NULL, NULL
          FROM account
        RETURNING id
    ), new_token AS (
        INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, used_at)
        SELECT p_token, id, p_token_hash, p_now, NULL FROM new_session
    ), audited AS (
        INSERT INTO audit_records (id, tenant_id, actor_id, action, result, target_type,
                                   target_id, ip, user_agent, request_id, details, created_at)
        SELECT p_audit, p_tenant, id, 'auth.login', 'success', 'user', id::text, p_ip,
               p_user_agent, p_request_id, p_details, p_now
          FROM account
    )
    SELECT EXISTS (SELECT FROM account) INTO written;
    RETURN written;
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
