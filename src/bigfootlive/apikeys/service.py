"""API keys: created once (secret shown once), stored as SHA-256, listed by prefix, revoked.

`authenticate` is on the media-server callback path, so it answers from the cache; a revoke
overwrites the cache entry at once, and (de)activating a tenant drops its keys' entries. A
missing entry is read from the database once per process however many callers want it at once
(`kit.singleflight`: the entry expires every minute, and a media server's callbacks all carry
the same key), and written only if no entry (a revocation's) came meanwhile.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.apikeys.schemas import ApiKeyCreate, ApiKeyOut, KeyScope
from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.scoping import act_for_platform, act_for_tenant, platform_scope, scoped
from bigfootlive.authz.subject import AuthSubject, TenantInactive
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import Forbidden, NotFound, Unauthorized
from bigfootlive.kit import jsonparse
from bigfootlive.kit.backends import Cache
from bigfootlive.kit.crypto import hash_token, random_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.kit.singleflight import SingleFlight
from bigfootlive.models import ApiKey, Tenant
from bigfootlive.state import Infrastructure

KEY_PREFIX = "bfk_"
_CACHE_TTL = 60.0


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"
    message = "A valid API key is required"


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """A machine client, as of this request."""

    key_id: uuid.UUID
    tenant_id: uuid.UUID | None  # None: platform scope

    def may_act_for(self, tenant_id: uuid.UUID) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scope=KeyScope.PLATFORM if key.tenant_id is None else KeyScope.TENANT,
        tenant_id=key.tenant_id,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def create_key(
    session: AsyncSession, meta: RequestMeta, subject: AuthSubject, body: ApiKeyCreate
) -> tuple[ApiKey, str]:
    if body.scope == KeyScope.PLATFORM and not subject.is_platform_admin:
        raise Forbidden("Only platform admins create platform keys", code="platform_admin_required")
    if body.scope == KeyScope.PLATFORM:
        act_for_platform("platform API key management")  # a key of no tenant
    secret = KEY_PREFIX + random_token(32)
    key = ApiKey(
        id=uuid.uuid4(),
        tenant_id=None if body.scope == KeyScope.PLATFORM else subject.tenant_id,
        name=body.name,
        prefix=secret[:12],
        key_hash=hash_token(secret),
        created_by=subject.user_id,
        created_at=utcnow(),
        expires_at=body.expires_at,
    )
    session.add(key)
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.API_KEY_CREATE,
        tenant_id=subject.tenant_id,
        target_type="api_key",
        target_id=key.id,
        details={"scope": body.scope.value, "prefix": key.prefix},
    )
    return key, secret


async def list_keys(
    session: AsyncSession, subject: AuthSubject, scope: KeyScope
) -> Sequence[ApiKey]:
    if scope == KeyScope.PLATFORM:
        if not subject.is_platform_admin:
            raise Forbidden(code="platform_admin_required")
        act_for_platform("platform API key management")  # keys of no tenant
        stmt = select(ApiKey).where(ApiKey.tenant_id.is_(None))
    else:
        stmt = scoped(select(ApiKey), ApiKey, subject.tenant_id)
    return (await session.execute(stmt.order_by(ApiKey.created_at.desc()))).scalars().all()


async def revoke_key(
    state: Infrastructure,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    key_id: uuid.UUID,
) -> ApiKey:
    if subject.is_platform_admin:  # platform keys belong to no tenant
        act_for_platform("platform API key management")
    key = await session.get(ApiKey, key_id)
    visible = key is not None and (
        key.tenant_id == subject.tenant_id or (key.tenant_id is None and subject.is_platform_admin)
    )
    if key is None or not visible:
        raise NotFound("No such API key", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        await AuditLog(session, meta, subject.user_id).record(
            AuditAction.API_KEY_REVOKE,
            tenant_id=subject.tenant_id,
            target_type="api_key",
            target_id=key.id,
        )
    digest = key.key_hash

    async def forget() -> None:
        await state.cache.set(f"apikeys:{digest}", b"{}", ttl=_CACHE_TTL)

    after_commit(session, forget)
    return key


def cache_key(secret: str | None) -> str | None:
    """The cache entry `authenticate` reads for `secret` (None for what it refuses unread),
    so a caller can fetch it together with the other entries of its decision."""
    if not secret or not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    return f"apikeys:{hash_token(secret)}"


async def authenticate(
    state: Infrastructure, secret: str | None, *, cache: Cache | None = None
) -> ApiPrincipal:
    """The principal for an API key secret, from the cache when possible (`cache`: a view of
    `state.cache` that may already hold the entry)."""
    key = cache_key(secret)
    if key is None:
        raise InvalidApiKey()
    cache = state.cache if cache is None else cache
    raw = await cache.get(key)
    if raw is None:
        # One load of a missing entry per process (`Database.batches`: per app)
        loads = SingleFlight[bytes].kept_in(state.db.batches, "apikeys.load")
        raw = await loads(key, functools.partial(_load_into_cache, state, key))
    entry = jsonparse.loads(raw)
    if not entry:
        raise InvalidApiKey()
    expires = entry.get("exp")
    if expires is not None and expires <= dt.datetime.now(dt.UTC).timestamp():
        raise InvalidApiKey("The API key has expired", code="api_key_expired")
    if entry.get("off"):
        raise TenantInactive()
    tenant = entry.get("tid")
    # The key names whose rows its caller may touch: its tenant's, or every tenant's for a
    # platform key (row-level security).
    if tenant is None:
        act_for_platform("platform API key")
    else:
        act_for_tenant(uuid.UUID(tenant))
    return ApiPrincipal(
        key_id=uuid.UUID(entry["id"]), tenant_id=None if tenant is None else uuid.UUID(tenant)
    )


async def _load_into_cache(state: Infrastructure, key: str) -> bytes:
    """The entry read from the database, then written to the cache unless an entry came
    first: a revocation's (or another process's) write made after this read began wins, and
    is what the callers get."""
    raw = await _load(state, key.removeprefix("apikeys:"))
    if await state.cache.add(key, raw, ttl=_CACHE_TTL):
        return raw
    return await state.cache.get(key) or raw


async def _load(state: Infrastructure, digest: str) -> bytes:
    # unscoped: a key is found by its hash before its tenant is known
    with platform_scope("API key lookup"):
        async with state.db.sessionmaker() as session:
            row = (
                await session.execute(
                    select(ApiKey, Tenant.is_active)
                    .outerjoin(Tenant, Tenant.id == ApiKey.tenant_id)
                    .where(ApiKey.key_hash == digest)
                )
            ).one_or_none()
    if row is None or row[0].revoked_at is not None:
        return b"{}"
    key, tenant_active = row
    return json.dumps(
        {
            "id": str(key.id),
            "tid": None if key.tenant_id is None else str(key.tenant_id),
            "exp": None if key.expires_at is None else key.expires_at.timestamp(),
            "off": key.tenant_id is not None and not tenant_active,
        }
    ).encode()


async def forget_tenant_keys(
    state: Infrastructure, session: AsyncSession, tenant_id: uuid.UUID
) -> None:
    """Drop the cached entries of a tenant's keys once the session commits (its status changed)."""
    rows = await session.execute(scoped(select(ApiKey.key_hash), ApiKey, tenant_id))
    cache_keys = [f"apikeys:{digest}" for digest in rows.scalars()]

    async def forget() -> None:
        if cache_keys:
            await state.cache.delete(*cache_keys)

    after_commit(session, forget)
