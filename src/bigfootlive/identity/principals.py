"""The authenticated-principal cache: who a session's bearer is, without a query per request.

An authenticated request needs the session's user (role, status), their tenant (slug, status)
and the session (revoked, expired). Reading them is a database round trip and a transaction,
most of what an authenticated read costs, for facts that rarely change. This process keeps them
per session id (`Principal`), for `AUTH_PRINCIPAL_TTL_SECONDS` at most, and checks on every
request, in the one cache round trip the revocation check already made (`Cache.mget`), that
nothing they depend on has changed since they were read:

- `revoked:<session>`: the revoked-session set (`identity.revocation`): refused at once;
- `principal:user:<user>` and `principal:tenant:<tenant>`: stamps, random values rewritten
  after every committed change of the user's row (role, status, password, profile, sign-in) or
  the tenant's status or slug, and on every session revocation. A cached principal remembers the
  stamps it was read under and is used only while both are still the same.

So a change made by any process sharing the cache (Redis) is seen by the next request on every
process, as before: the writer rewrites the stamps after its commit and before its response is
sent. An absent stamp (never written, expired, or the cache restarted) matches nothing: the
principal is read again and the stamp created. Without Redis the cache is the process's own and
so are the stamps. The changes are found by the ORM (`watch`: every flush of a `User`, and of a
`Tenant`'s status or slug); a Core UPDATE of those tables must call `changed` itself. The
process's own entries are also dropped at the commit, so a change is seen at once in the process
even before the stamps are rewritten.

The same flushes keep a third stamp per tenant, `principal:members:<tenant>`, rewritten after
any committed write of one of the tenant's `User` rows (created, changed or deleted): the
member list's cached first pages (`identity.member_pages`, `member_pages` here) are checked
against it, read in the same round trip (`subject_and`). A Core write of `users` says so with
`user_rows_written(session, tenant)` (in a session) or `members_changed` (committed).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from bigfootlive.authz.subject import AccessClaims, AuthSubject, Principal, TenantInactive
from bigfootlive.db import Database, after_commit
from bigfootlive.errors import Unauthorized
from bigfootlive.identity.member_pages import MemberPages, members_stamp_key
from bigfootlive.identity.revocation import RevokedSessions, revoked_key
from bigfootlive.kit.backends.base import Cache
from bigfootlive.models import AuthSession, Tenant, User

SESSION_INFO_KEY = "principals"  # the sessionmaker's `info` entry that points at the cache
_CHANGES_KEY = "principal_changes"
STAMP_TTL = 7 * 24 * 3600.0  # outlives any cached principal; an expired stamp only costs a read
MAX_ENTRIES = 20_000

_USER_KEYS = tuple(column.key for column in User.__table__.columns)
_LOAD = (
    select(
        *(getattr(User, key) for key in _USER_KEYS),
        AuthSession.revoked_at,
        AuthSession.expires_at,
        Tenant.slug,
        Tenant.is_active,
    )
    .join(AuthSession, AuthSession.user_id == User.id)
    .join(Tenant, Tenant.id == User.tenant_id)
)


def user_stamp_key(user_id: uuid.UUID) -> str:
    return f"principal:user:{user_id}"


def tenant_stamp_key(tenant_id: uuid.UUID) -> str:
    return f"principal:tenant:{tenant_id}"


def _session_ended() -> Unauthorized:
    return Unauthorized("The session has ended", code="session_revoked")


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    user_stamp: bytes
    tenant_stamp: bytes
    loaded_at: float


class PrincipalCache:
    def __init__(self, cache: Cache, db: Database, *, ttl: float) -> None:
        self.cache = cache
        self.db = db
        self.ttl = ttl
        self._entries: dict[uuid.UUID, _Entry] = {}
        # The cached sessions of each user and tenant, to drop them without a scan.
        self._by_user: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._by_tenant: dict[uuid.UUID, set[uuid.UUID]] = {}
        # The member list's first pages, under the `principal:members:<tenant>` stamps.
        self.member_pages = MemberPages(cache, ttl=ttl)

    # ------------------------------------------------------------ reading

    async def subject(self, claims: AccessClaims) -> AuthSubject:
        """The subject of a verified access token, or Unauthorized / TenantInactive."""
        sid = claims.session_id
        revoked, user_stamp, tenant_stamp = await self.cache.mget(
            revoked_key(sid), user_stamp_key(claims.user_id), tenant_stamp_key(claims.tenant_id)
        )
        return await self._subject(claims, revoked, user_stamp, tenant_stamp)

    async def subject_and(self, claims: AccessClaims, key: str) -> tuple[AuthSubject, bytes | None]:
        """`subject`, and the cache's value at `key` read in the same round trip (before
        anything the request reads next), e.g. the token's tenant's members stamp."""
        revoked, user_stamp, tenant_stamp, value = await self.cache.mget(
            revoked_key(claims.session_id),
            user_stamp_key(claims.user_id),
            tenant_stamp_key(claims.tenant_id),
            key,
        )
        return await self._subject(claims, revoked, user_stamp, tenant_stamp), value

    async def _subject(
        self,
        claims: AccessClaims,
        revoked: bytes | None,
        user_stamp: bytes | None,
        tenant_stamp: bytes | None,
    ) -> AuthSubject:
        sid = claims.session_id
        if revoked is not None:
            raise _session_ended()
        entry = self._entries.get(sid)
        if (
            entry is not None
            and user_stamp is not None
            and entry.user_stamp == user_stamp
            and tenant_stamp is not None
            and entry.tenant_stamp == tenant_stamp
            and time.monotonic() - entry.loaded_at < self.ttl
        ):
            principal = entry.principal
        else:
            principal = await self._load(claims)
            await self._remember(sid, principal, user_stamp, tenant_stamp)
        return _check(principal, claims)

    async def _load(self, claims: AccessClaims) -> Principal:
        # unscoped: pinned to the token's own tenant (User.tenant_id == claims.tenant_id). Read
        # on the primary: a replica's lag would otherwise be kept for the entry's lifetime.
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    _LOAD.where(
                        AuthSession.id == claims.session_id,
                        User.id == claims.user_id,
                        User.tenant_id == claims.tenant_id,
                    )
                )
            ).one_or_none()
        if row is None:
            raise Unauthorized("The access token is not valid", code="invalid_token")
        *user_values, revoked_at, expires_at, tenant_slug, tenant_active = row
        if revoked_at is not None:
            raise _session_ended()
        return Principal(
            user_row=dict(zip(_USER_KEYS, user_values, strict=True)),
            tenant_slug=tenant_slug,
            tenant_active=bool(tenant_active),
            session_expires_at=expires_at,
        )

    async def _remember(
        self,
        sid: uuid.UUID,
        principal: Principal,
        user_stamp: bytes | None,
        tenant_stamp: bytes | None,
    ) -> None:
        if self.ttl <= 0:
            return
        # A stamp created now, after the read, still guards it: a writer that committed after
        # the read rewrites the stamp after its commit, so either `add` finds the writer's
        # stamp (and nothing is kept) or the writer replaces ours.
        if user_stamp is None:
            user_stamp = await self._create_stamp(user_stamp_key(principal.user_id))
        if tenant_stamp is None:
            tenant_stamp = await self._create_stamp(tenant_stamp_key(principal.tenant_id))
        if user_stamp is None or tenant_stamp is None:
            return
        self._drop(sid)
        if len(self._entries) >= MAX_ENTRIES:
            self._drop(next(iter(self._entries)))  # the oldest
        self._entries[sid] = _Entry(principal, user_stamp, tenant_stamp, time.monotonic())
        self._by_user.setdefault(principal.user_id, set()).add(sid)
        self._by_tenant.setdefault(principal.tenant_id, set()).add(sid)

    def _drop(self, sid: uuid.UUID) -> None:
        entry = self._entries.pop(sid, None)
        if entry is None:
            return
        for index, key in (
            (self._by_user, entry.principal.user_id),
            (self._by_tenant, entry.principal.tenant_id),
        ):
            sids = index.get(key)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del index[key]

    async def _create_stamp(self, key: str) -> bytes | None:
        stamp = secrets.token_hex(8).encode()
        return stamp if await self.cache.add(key, stamp, ttl=STAMP_TTL) else None

    # ------------------------------------------------------------ invalidation

    def forget_local(
        self,
        *,
        sessions: Iterable[uuid.UUID] = (),
        users: Iterable[uuid.UUID] = (),
        tenants: Iterable[uuid.UUID] = (),
        members: Iterable[uuid.UUID] = (),
    ) -> None:
        """Drop this process's entries for these sessions, users and tenants, and the member
        pages of the tenants in `members`."""
        self.member_pages.forget(members)
        stale = set(sessions)
        for user in users:
            stale |= self._by_user.get(user, set())
        for tenant in tenants:
            stale |= self._by_tenant.get(tenant, set())
        for sid in stale:
            self._drop(sid)

    async def changed(
        self,
        *,
        users: Iterable[uuid.UUID] = (),
        tenants: Iterable[uuid.UUID] = (),
        members: Iterable[uuid.UUID] = (),
    ) -> None:
        """These users' or tenants' rows changed (committed): every process reads them again.
        `members`: tenants some of whose `User` rows were written (their member pages)."""
        users, tenants, members = set(users), set(tenants), set(members)
        self.forget_local(users=users, tenants=tenants, members=members)
        keys = [
            *map(user_stamp_key, users),
            *map(tenant_stamp_key, tenants),
            *map(members_stamp_key, members),
        ]
        if keys:  # one round trip
            await self.cache.set_many(
                {key: secrets.token_hex(8).encode() for key in keys}, ttl=STAMP_TTL
            )

    async def members_changed(self, tenant_id: uuid.UUID) -> None:
        """A committed Core write of the tenant's `users` rows (e.g. a sign-in's
        `last_login_at`): every process reads its member pages again."""
        await self.changed(members=[tenant_id])

    async def session_revoked(self, session_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        """Called by `RevokedSessions.revoke`: the revoked set refuses the session everywhere;
        rewriting the user's stamp also makes every process read it again, so the session's
        row still refuses it if the revoked-set entry is lost."""
        self.forget_local(sessions=[session_id])
        if user_id is not None:
            await self.changed(users=[user_id])

    def clear(self) -> None:
        self.member_pages.clear()
        self._entries.clear()
        self._by_user.clear()
        self._by_tenant.clear()

    # ------------------------------------------------------------ finding the changes

    def watch(self, revoked: RevokedSessions) -> None:
        """Find changed users and tenants in every flush of the database's write sessions, and
        hear of every revoked session."""
        self.db.sessionmaker.configure(
            info={**self.db.sessionmaker.kw.get("info", {}), SESSION_INFO_KEY: self}
        )
        revoked.listeners.append(self.session_revoked)


def _check(principal: Principal, claims: AccessClaims) -> AuthSubject:
    if principal.user_id != claims.user_id or principal.tenant_id != claims.tenant_id:
        raise Unauthorized("The access token is not valid", code="invalid_token")
    if principal.session_expires_at <= dt.datetime.now(dt.UTC):
        raise _session_ended()
    if not principal.is_active:
        raise Unauthorized("The account is disabled", code="account_disabled")
    if not principal.tenant_active and not principal.is_platform_admin:
        raise TenantInactive()
    return AuthSubject(principal, claims)


@dataclass(slots=True)
class _Pending:
    """What a transaction changed so far: users, tenants, tenants whose members changed."""

    users: set[uuid.UUID] = field(default_factory=set)
    tenants: set[uuid.UUID] = field(default_factory=set)
    members: set[uuid.UUID] = field(default_factory=set)


def _pend(
    session: Session | Any,
    cache: PrincipalCache,
    *,
    users: Iterable[uuid.UUID] = (),
    tenants: Iterable[uuid.UUID] = (),
    members: Iterable[uuid.UUID] = (),
) -> None:
    pending: _Pending | None = session.info.get(_CHANGES_KEY)
    if pending is None:
        pending = session.info[_CHANGES_KEY] = _Pending()
        found = pending

        # Once per transaction: rewrite the stamps after the commit (dropped on rollback).
        async def rewrite_stamps() -> None:
            await cache.changed(users=found.users, tenants=found.tenants, members=found.members)

        after_commit(session, rewrite_stamps)
    pending.users.update(users)
    pending.tenants.update(tenants)
    pending.members.update(members)


def user_rows_written(session: Session | Any, tenant_id: uuid.UUID) -> None:
    """A Core statement of `session` wrote `users` rows of this tenant (the ORM's flushes are
    found by themselves): its member pages are read again after the commit, everywhere."""
    cache = session.info.get(SESSION_INFO_KEY)
    if isinstance(cache, PrincipalCache):
        _pend(session, cache, members=[tenant_id])


def _tenant_changed(tenant: Tenant) -> bool:
    attrs: Any = inspect(tenant).attrs
    return bool(attrs.is_active.history.has_changes() or attrs.slug.history.has_changes())


def _user_tenants(user: User) -> list[uuid.UUID]:
    """The tenant of a written user, and the one it left if `tenant_id` changed."""
    history: Any = inspect(user).attrs.tenant_id.history
    return [user.tenant_id, *(t for t in history.deleted or () if t is not None)]


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _: Any) -> None:
    cache = session.info.get(SESSION_INFO_KEY)
    if not isinstance(cache, PrincipalCache):
        return
    users: set[uuid.UUID] = set()
    tenants: set[uuid.UUID] = set()
    members: set[uuid.UUID] = set()
    for obj in session.new:
        if isinstance(obj, User):  # a new member: no principal yet, a member page changed
            members.update(_user_tenants(obj))
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, User):
            users.add(obj.id)
            members.update(_user_tenants(obj))
        elif isinstance(obj, Tenant) and (obj in session.deleted or _tenant_changed(obj)):
            tenants.add(obj.id)
    if users or tenants or members:
        _pend(session, cache, users=users, tenants=tenants, members=members)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    cache = session.info.get(SESSION_INFO_KEY)
    pending: _Pending | None = session.info.pop(_CHANGES_KEY, None)
    if isinstance(cache, PrincipalCache) and pending is not None:
        cache.forget_local(users=pending.users, tenants=pending.tenants, members=pending.members)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGES_KEY, None)
