"""SSO provider administration: list, save (validated: domains, URLs, IdP metadata), delete."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import Unprocessable
from bigfootlive.identity.ports import IdentityState
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import SsoProvider, Tenant
from bigfootlive.sso import repository as repo
from bigfootlive.sso.base import SsoConfigError, SsoProtocol
from bigfootlive.sso.provider import ProviderNotFound, load, protocol_of
from bigfootlive.sso.schemas import (
    MetadataRefreshOut,
    ProtocolConfig,
    ProviderIn,
    ProviderOut,
    ProviderSettings,
)
from bigfootlive.sso.templates import refuse_placeholders
from bigfootlive.tenants import service as tenants

SECRET_NAMES = ("client_secret", "bind_password")


def provider_out(state: IdentityState, tenant_slug: str, row: SsoProvider) -> ProviderOut:
    loaded = load(row)
    s = loaded.settings
    out = ProviderOut(
        id=row.id,
        name=row.name,
        protocol=row.protocol,
        enabled=row.enabled,
        config=s.config,
        attribute_mapping=s.attribute_mapping,
        role_mapping=s.role_mapping,
        default_role=s.default_role,
        jit_provisioning=s.jit_provisioning,
        sso_required=s.sso_required,
        break_glass_emails=s.break_glass_emails,
        domains=s.domains,
        secrets_set=sorted(k for k, v in (row.secrets or {}).items() if v),
        metadata_refresh=MetadataRefreshOut(
            status=row.metadata_refresh_status,
            checked_at=row.metadata_checked_at,
            refreshed_at=row.metadata_refreshed_at,
            error=row.metadata_refresh_error,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    loaded.protocol.describe(state, tenant_slug, row, out)
    return out


async def list_providers(
    state: IdentityState, session: AsyncSession, tenant: Tenant, provider_id: uuid.UUID | None
) -> list[ProviderOut]:
    if provider_id is not None:
        row = await repo.get_provider(session, tenant.id, provider_id)
        if row is None:
            raise ProviderNotFound()
        return [provider_out(state, tenant.slug, row)]
    rows = await repo.list_providers(session, tenant.id)
    return [provider_out(state, tenant.slug, r) for r in rows]


def set_refresh_status(
    row: SsoProvider, *, now: dt.datetime | None, error: str | None, refreshed: bool
) -> None:
    """Record a metadata refresh attempt at `now` (None: forget the status)."""
    row.metadata_checked_at = now
    row.metadata_refresh_status = None if now is None else ("error" if error else "ok")
    row.metadata_refresh_error = error
    if refreshed or now is None:
        row.metadata_refreshed_at = now


async def _refuse_internal_urls(
    state: IdentityState, protocol: SsoProtocol[Any], config: ProtocolConfig
) -> None:
    """The SSRF guard at save time too, so a provider that could never be used is not saved
    (each URL is checked again when used: a name may resolve elsewhere by then)."""
    allow_private = state.settings.sso_allow_private_networks
    for field, url in protocol.outbound_urls(config):
        try:
            await protocol.check_url(url, allow_private)
        except SsoConfigError as exc:
            raise Unprocessable(exc.message, code=exc.code, field=f"config.{field}") from exc


async def save_provider(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    body: ProviderIn,
) -> ProviderOut:
    refuse_placeholders(body)  # before the URLs: else "Cannot resolve <your-okta-domain>"
    protocol = protocol_of(body.config.protocol)
    await _refuse_internal_urls(state, protocol, body.config)
    tenant = await tenants.require_tenant(session, subject.tenant_id)
    verified = await repo.verified_domains(session, tenant.id)
    unverified = [d for d in body.domains if d not in verified]
    if unverified:
        raise Unprocessable(
            "These domains are not verified for this tenant",
            code="domain_not_verified",
            domains=unverified,
        )
    config, fetched_at = await protocol.prepare(state, body.config)
    settings = ProviderSettings(
        config=config,
        attribute_mapping=body.attribute_mapping,
        role_mapping=body.role_mapping,
        default_role=body.default_role,
        jit_provisioning=body.jit_provisioning,
        sso_required=body.sso_required,
        break_glass_emails=[str(e).lower() for e in body.break_glass_emails],
        domains=body.domains,
    )
    if body.id is None:
        row = SsoProvider(id=uuid.uuid4(), tenant_id=tenant.id, secrets={})
        session.add(row)
        action, before = AuditAction.SSO_PROVIDER_CREATE, {}
    else:
        found = await repo.get_provider(session, tenant.id, body.id)
        if found is None:
            raise ProviderNotFound()
        row = found
        action = AuditAction.SSO_PROVIDER_UPDATE
        before = {**row.config, "name": row.name, "enabled": row.enabled}
    row.name = body.name
    row.enabled = body.enabled
    row.protocol = config.protocol
    row.config = settings.model_dump(mode="json")
    if fetched_at is not None:  # the SAML metadata was fetched just now
        set_refresh_status(row, now=fetched_at, error=None, refreshed=True)
    elif row.config["config"] != before.get("config"):
        # The status described the previous IdP configuration.
        set_refresh_status(row, now=None, error=None, refreshed=False)
    secrets = dict(row.secrets or {})
    secrets_changed = []
    for name in SECRET_NAMES:
        value = getattr(body.secrets, name)
        if value is None:
            continue
        secrets_changed.append(name)
        if value == "":
            secrets.pop(name, None)
        else:
            secrets[name] = state.secrets.encrypt(value, context=f"sso:{row.id}:{name}")
    row.secrets = secrets
    row.updated_at = utcnow()
    after = {**row.config, "name": row.name, "enabled": row.enabled}
    changed = sorted(k for k in after.keys() | before.keys() if after.get(k) != before.get(k))
    await AuditLog(session, meta, subject.user_id).record(
        action,
        tenant_id=tenant.id,
        target_type="sso_provider",
        target_id=row.id,
        details={"protocol": row.protocol, "changed": changed, "secrets_changed": secrets_changed},
    )
    await session.flush()
    return provider_out(state, tenant.slug, row)


async def delete_provider(
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    provider_id: uuid.UUID,
    *,
    purge: bool,
) -> None:
    row = await repo.get_provider(session, subject.tenant_id, provider_id)
    if row is None:
        raise ProviderNotFound()
    if purge:
        await session.delete(row)
    else:
        row.enabled = False
        row.updated_at = utcnow()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.SSO_PROVIDER_DELETE if purge else AuditAction.SSO_PROVIDER_DISABLE,
        tenant_id=subject.tenant_id,
        target_type="sso_provider",
        target_id=provider_id,
        details={"protocol": row.protocol},
    )
