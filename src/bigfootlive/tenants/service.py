"""Tenants, their policy and their members."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bigfootlive.apikeys import service as apikeys
from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import act_for_nobody, act_for_tenant, platform_scope
from bigfootlive.db import Database, after_commit
from bigfootlive.errors import Conflict, Forbidden, NotFound, Unprocessable
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Tenant, TenantDomain, User
from bigfootlive.state import Infrastructure
from bigfootlive.tenants import repository as repo
from bigfootlive.tenants.schemas import SLUG_RE, TenantSettings, TenantUpdate

RESERVED_SLUGS = frozenset({"api", "admin", "www", "platform", "static", "docs"})
# How long a tenant's status may be read from the cache (`set_active` rewrites it at once).
_STATUS_TTL = 60.0


def settings_of(tenant: Tenant) -> TenantSettings:
    return TenantSettings.model_validate(tenant.settings or {})


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return await repo.get_tenant(session, tenant_id)


async def require_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    """The caller's own tenant; gone only if it was deleted mid-session."""
    tenant = await repo.get_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant", code="tenant_not_found")
    return tenant


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return await repo.get_tenant_by_slug(session, slug)


async def resolve_tenant(session: AsyncSession, slug: str | None, email: str) -> Tenant | None:
    """The tenant named by slug, else the one owning the email's verified domain.

    A sign-in (or registration, or recovery) names its tenant: from here on the caller's task
    acts for it (row-level security), and for no tenant when there is none."""
    if slug:
        tenant = await repo.get_tenant_by_slug(session, slug)
    else:
        with platform_scope("tenant by email domain"):
            tenant = await repo.get_tenant_by_domain(session, email.rsplit("@", 1)[-1])
    if tenant is None or not tenant.is_active:
        act_for_nobody()
        return None
    act_for_tenant(tenant.id)
    return tenant


async def create_tenant(
    session: AsyncSession,
    *,
    slug: str,
    name: str,
    settings: TenantSettings | None = None,
    email_domains: Sequence[str] = (),
) -> Tenant:
    slug = slug.lower()
    if not SLUG_RE.match(slug) or slug in RESERVED_SLUGS:
        raise Unprocessable(
            "The slug must be lower-case letters, digits and dashes", code="invalid_slug"
        )
    if await repo.get_tenant_by_slug(session, slug) is not None:
        raise Conflict("A tenant with this slug exists", code="slug_taken")
    tenant = Tenant(
        id=uuid.uuid4(),
        slug=slug,
        name=name,
        settings=(settings or TenantSettings()).model_dump(mode="json"),
    )
    session.add(tenant)
    await session.flush()
    for domain in email_domains:
        session.add(TenantDomain(tenant_id=tenant.id, domain=domain.lower(), verified=True))
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "The slug or an email domain is already taken", code="tenant_conflict"
        ) from exc
    return tenant


async def email_domains(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    return await repo.tenant_domains(session, tenant_id)


async def update_tenant(session: AsyncSession, tenant: Tenant, patch: TenantUpdate) -> list[str]:
    """Apply a partial update; returns the names of the fields that changed."""
    changed: list[str] = []
    if patch.name is not None and patch.name != tenant.name:
        tenant.name = patch.name
        changed.append("name")
    if patch.settings is not None:
        current = settings_of(tenant).model_dump(mode="json")
        updates = patch.settings.model_dump(mode="json", exclude_unset=True)
        merged = {**current, **{k: v for k, v in updates.items() if v is not None}}
        try:
            validated = TenantSettings.model_validate(merged)
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise Unprocessable(
                "The settings are not valid", code="invalid_settings", problems=problems
            ) from exc
        for key in updates:
            if current.get(key) != merged.get(key):
                changed.append(f"settings.{key}")
        tenant.settings = validated.model_dump(mode="json")
    return changed


async def update_tenant_audited(
    session: AsyncSession,
    meta: RequestMeta,
    actor_id: uuid.UUID,
    tenant: Tenant,
    patch: TenantUpdate,
) -> list[str]:
    """`update_tenant`, and the change on the audit trail (when there was one)."""
    changed = await update_tenant(session, tenant, patch)
    if changed:
        await AuditLog(session, meta, actor_id).record(
            AuditAction.TENANT_SETTINGS_CHANGE,
            tenant_id=tenant.id,
            target_type="tenant",
            target_id=tenant.id,
            details={"changed": changed},
        )
    await session.flush()
    return changed


async def set_active(
    state: Infrastructure,
    session: AsyncSession,
    meta: RequestMeta | None,
    tenant: Tenant,
    active: bool,
    *,
    actor_id: uuid.UUID | None = None,
) -> bool:
    """Activate or deactivate a tenant; True when its status changed.

    A deactivated tenant's members are refused on every request (`authz.deps.authenticate`
    reads the tenant's status with the user, at no extra cost), on refresh and at sign-in; its
    API keys are refused as soon as their cached entries are dropped here, after the commit, and
    the media-server callbacks for its events (platform keys included) once the cached status
    (`is_active`) is rewritten, also after the commit. Sessions are kept, so reactivating
    restores access.
    """
    if tenant.is_active == active:
        return False
    tenant.is_active = active
    await AuditLog(session, meta, actor_id).record(
        AuditAction.TENANT_ACTIVATE if active else AuditAction.TENANT_DEACTIVATE,
        tenant_id=tenant.id,
        target_type="tenant",
        target_id=tenant.id,
    )
    await apikeys.forget_tenant_keys(state, session, tenant.id)
    await session.flush()
    tenant_id = tenant.id

    async def remember_status() -> None:
        await state.cache.set(_status_key(tenant_id), _status_value(active), ttl=_STATUS_TTL)
        # Processes that keep what depends on the status (the WebSocket admission) drop it.
        await state.pubsub.publish(
            STATUS_CHANNEL, json.dumps({"tenant_id": str(tenant_id), "active": active}).encode()
        )

    after_commit(session, remember_status)
    return True


STATUS_CHANNEL = "tenants:status"
"""Published after the commit of each activation or deactivation: {"tenant_id", "active"}."""


def _status_key(tenant_id: uuid.UUID) -> str:
    return f"tenants:{tenant_id}:active"


def _status_value(active: bool) -> bytes:
    return b"1" if active else b"0"


async def is_active(state: Infrastructure, session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    """Whether the tenant is active (a deleted one is not), through the cache: for hot paths
    that act for a tenant without one of its members or keys, e.g. media-server callbacks
    authorized by a platform API key."""
    raw = await state.cache.get(_status_key(tenant_id))
    if raw is None:
        tenant = await repo.get_tenant(session, tenant_id)
        active = tenant is not None and tenant.is_active
        await state.cache.set(_status_key(tenant_id), _status_value(active), ttl=_STATUS_TTL)
        return active
    return raw == _status_value(True)


async def list_users(
    conn: AsyncSession | AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    query: str | None,
    cursor: str | None,
    limit: int,
    role: Role | None = None,
    active: bool | None = None,
) -> Sequence[repo.UserListRow]:
    """A page of members as rows (`repository.USER_LIST_COLUMNS`), optionally only those
    with `role` or with the status `active`."""
    return await repo.list_users(
        conn,
        tenant_id,
        query=query,
        cursor=cursor,
        limit=limit,
        role=role.value if role is not None else None,
        active=active,
    )


async def users_page(
    db: Database,
    tenant_id: uuid.UUID,
    *,
    query: str | None,
    cursor: str | None,
    limit: int,
    role: str | None = None,
    active: bool | None = None,
) -> Sequence[Sequence[Any]]:
    """A page of members for the API (`limit + 1` rows of `repository.USER_PAGE_COLUMNS`).
    The first page, by far the most read, is one round trip on PostgreSQL (the function
    `bfl_users_first_page` of migration 0022: the row scope and the statement together) and
    one cached statement through `Database.read_rows` on SQLite; a search, a filter or a later
    page goes through `Database.reads`."""
    if not query and not cursor and role is None and active is None:
        if db.engine.dialect.name == "postgresql":
            rows = await db.call_scoped("bfl_users_first_page", tenant_id, limit + 1)
            return cast(Sequence[Sequence[Any]], rows)  # records: their values by position
        return await db.read_rows(
            repo.first_page(limit, repo.USER_PAGE_COLUMNS), {"tenant_id": tenant_id}
        )
    async with db.reads() as conn:
        return await repo.list_users(
            conn, tenant_id, query=query, cursor=cursor, limit=limit, role=role,
            active=active, columns=repo.USER_PAGE_COLUMNS,
        )  # fmt: skip


def check_role_change(actor_role: Role, actor_is_platform_admin: bool, target_role: Role) -> None:
    """An admin may grant any tenant role; nobody else may grant roles at all."""
    if not actor_is_platform_admin and actor_role is not Role.ADMIN:
        raise Forbidden("Only administrators can change roles", code="insufficient_role")
    if target_role > actor_role and not actor_is_platform_admin:
        raise Forbidden("You cannot grant a role above your own", code="role_escalation")


async def ensure_not_last_admin(
    session: AsyncSession, user: User, new_role: Role | None, active: bool | None
) -> None:
    demoting = user.role == Role.ADMIN.value and (
        (new_role is not None and new_role is not Role.ADMIN) or active is False
    )
    if demoting and await repo.count_admins(session, user.tenant_id) <= 1:
        raise Conflict("A tenant must keep at least one active admin", code="last_admin")


def tenant_not_found() -> NotFound:
    return NotFound("No such user", code="user_not_found")
