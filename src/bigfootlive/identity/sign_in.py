"""Sign-in: the password check (rate limits, lockout, SSO-only accounts) and the step every
sign-in method ends in, which applies the MFA policy before a session starts. Knows nothing of
HTTP."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog, count_audited
from bigfootlive.errors import Forbidden, Unauthorized
from bigfootlive.identity import lockout, sign_in_pg
from bigfootlive.identity import repository as repo
from bigfootlive.identity.hooks import (
    PASSWORD_SIGN_IN,
    SIGN_IN_CHALLENGE,
    PasswordSignIn,
    PasswordSignInRefused,
    SignIn,
)
from bigfootlive.identity.ports import IdentityState
from bigfootlive.identity.schemas import MfaChallenge, TokenPair
from bigfootlive.identity.sessions import start_session, token_pair
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Tenant, User
from bigfootlive.tenants import service as tenants


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "The email or password is incorrect"


async def login(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    tenant_slug: str | None,
    email: str,
    password: str,
) -> TokenPair | MfaChallenge:
    """A password sign-in. Its statements: the tenant (unless cached, `tenants.cache`), one
    read (account, lockout record, usable factor count), and on success one write (session,
    refresh token, audit record, `last_login_at`, lockout record cleared); the SSO policy comes
    from its cache too. On PostgreSQL each is one round trip in a transaction of its own
    (`sign_in_pg`), none held across the hash. The rate limits cost one Redis round trip."""
    settings = state.settings
    email = email.lower()
    tenant = await state.tenant_cache.resolve(session, tenant_slug, email)
    if tenant is None:
        await state.limiter.check(settings.login_rate_limit, "login-ip", meta.ip)
        await state.passwords.verify(None, password)
        await AuditLog.detached(state.db, meta, None).record(
            AuditAction.AUTH_LOGIN, tenant_id=None, details={"reason": "unknown_tenant"}
        )
        raise InvalidCredentials()
    await state.limiter.check_all(
        (settings.login_rate_limit, ("login-ip", meta.ip)),
        (settings.login_rate_limit, ("login-account", str(tenant.id), email)),
    )
    policy = tenants.settings_of(tenant)
    mfa = policy.mfa
    email_hash = lockout.key(email)
    factor_types = mfa.allowed_factors if mfa.mode != "off" else None
    # One round trip each, outside the request's transaction: unless the caller has begun one
    # (an invitation accepted in it, the tenant just read), whose writes the sign-in must see.
    on_postgresql = state.db.engine.dialect.name == "postgresql" and not session.in_transaction()
    if on_postgresql:
        found = await sign_in_pg.read(
            state.db, tenant.id, email, email_hash, factor_types=factor_types
        )
    else:
        found = await repo.sign_in_read(
            session, tenant.id, email, email_hash, factor_types=factor_types
        )
    user = found.user
    now = state.clock()
    failures_on_record = await lockout.check(
        state,
        meta,
        tenant_id=tenant.id,
        user=user,
        on_record=found.lockout_on_record,
        locked_until=found.locked_until,
        now=now,
    )
    if user is None:
        await state.passwords.verify(None, password)  # the same cost as a real account's
        await lockout.record_failure(
            state, meta, tenant_id=tenant.id, email=email, user=None, policy=policy.lockout, now=now
        )
        raise InvalidCredentials()

    ok, needs_rehash = await state.passwords.verify(user.password_hash, password)
    if not ok:
        await lockout.record_failure(
            state, meta, tenant_id=tenant.id, email=email, user=user, policy=policy.lockout, now=now
        )
        raise InvalidCredentials()
    if not user.is_active:
        await _refused(state, meta, tenant, user, "disabled")
        raise Forbidden("The account is disabled", code="account_disabled")
    try:
        # "SSO required": break-glass admins only (the SSO domain's hook)
        await state.hooks.emit(PASSWORD_SIGN_IN, PasswordSignIn(session, user))
    except PasswordSignInRefused as refused:
        await _refused(state, meta, tenant, user, refused.code)
        raise

    if needs_rehash:
        _attach(session, user)
        user.password_hash = await state.passwords.hash(password)  # ORM: the principals see it
    amr = ["pwd"]
    challenge = await state.hooks.ask(
        SIGN_IN_CHALLENGE,
        SignIn(
            state=state,
            session=session,
            user=user,
            tenant=tenant,
            meta=meta,
            amr=amr,
            usable_factors=found.usable_factors,
        ),
    )
    if challenge is None and on_postgresql and not needs_rehash:
        return await _start_session_pg(
            state, meta, user=user, tenant=tenant, amr=amr, signed_in_at=now,
            clear_lockout=email_hash if failures_on_record else None,
        )  # fmt: skip
    audit = AuditLog(session, meta, user.id).build(
        AuditAction.AUTH_LOGIN,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={"method": "pwd", "rehashed": needs_rehash},
    )
    if challenge is not None:  # the first factor passed all the same
        _attach(session, user)
        session.add(audit)
        user.last_login_at = now
        if failures_on_record:
            await lockout.clear(session, tenant.id, email)
        return challenge
    return await start_session(
        state,
        session,
        user=user,
        tenant=tenant,
        meta=meta,
        amr=amr,
        audit=audit,
        signed_in_at=now,
        # else nothing to delete
        clear_lockout=email_hash if failures_on_record else None,
    )


async def _refused(
    state: IdentityState, meta: RequestMeta, tenant: Tenant, user: User, reason: str
) -> None:
    """The audit record of a sign-in refused to a known account, kept whatever the request's
    transaction does."""
    await AuditLog.detached(state.db, meta, user.id).record(
        AuditAction.AUTH_LOGIN,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={"reason": reason},
    )


def _attach(session: AsyncSession, user: User) -> None:
    """The account read by `sign_in_pg` (detached) into the request's session, for a change
    through the ORM; a no-op for one the session read."""
    if user not in session:
        session.add(user)


async def _start_session_pg(
    state: IdentityState,
    meta: RequestMeta,
    *,
    user: User,
    tenant: Tenant,
    amr: list[str],
    signed_in_at: dt.datetime,
    clear_lockout: str | None,
) -> TokenPair:
    """`start_session` for a password sign-in on PostgreSQL: its rows, its audit record,
    `last_login_at` and the lockout record forgotten in one round trip (`sign_in_pg.write`),
    committed before the tokens exist. Refused (invalid credentials, audited) when the account
    was deactivated or its password changed while this sign-in's password was hashed."""
    started = await sign_in_pg.write(
        state.db,
        state.principals,
        user=user,
        meta=meta,
        amr=amr,
        ttl_seconds=state.settings.refresh_token_ttl_seconds,
        signed_in_at=signed_in_at,
        clear_lockout=clear_lockout,
    )
    if started is None:
        await _refused(state, meta, tenant, user, "account_changed")
        raise InvalidCredentials()
    count_audited(AuditAction.AUTH_LOGIN, "success", None)
    return token_pair(
        state,
        user=user,
        tenant_slug=tenant.slug,
        session_id=started.id,
        amr=amr,
        auth_time=started.auth_time,
        refresh=started.refresh_token,
    )


async def finish_sign_in(
    state: IdentityState,
    session: AsyncSession,
    *,
    user: User,
    tenant: Tenant,
    meta: RequestMeta,
    amr: list[str],
) -> TokenPair | MfaChallenge:
    """The last step of every sign-in method (password, SSO, ...) once the first factor passed.

    This is where the tenant's MFA policy is applied before a session is created: a user with
    a second factor (or who must have one) gets an MFA challenge instead of tokens, unless
    `amr` already shows a second factor (an IdP that did MFA, e.g. ["pwd", "mfa"]).
    """
    challenge = await state.hooks.ask(
        SIGN_IN_CHALLENGE,
        SignIn(state=state, session=session, user=user, tenant=tenant, meta=meta, amr=amr),
    )
    if challenge is not None:
        return challenge
    return await start_session(state, session, user=user, tenant=tenant, meta=meta, amr=amr)
