"""The SSO sign-in flows: start (`initiate`), the OIDC callback, the SAML ACS, the LDAP form,
and the one-time handoff code that carries the result through a browser redirect."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.scoping import act_for_tenant
from bigfootlive.db import utcnow
from bigfootlive.errors import BadRequest, BigfootError, NotFound
from bigfootlive.identity.ports import IdentityState
from bigfootlive.kit import jsonparse
from bigfootlive.kit.crypto import DecryptionError, random_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Tenant
from bigfootlive.sso import ldap, oidc, saml
from bigfootlive.sso import repository as repo
from bigfootlive.sso.base import SsoRejected, secret
from bigfootlive.sso.net import check_ldap_url
from bigfootlive.sso.provider import LoadedProvider, ProviderNotFound, load
from bigfootlive.sso.provisioning import HANDOFF_TTL, SignInOutcome, sign_in
from bigfootlive.sso.saml_response import parse_response
from bigfootlive.sso.schemas import (
    InitiateIn,
    InitiateOut,
    LdapConfig,
    LdapLoginIn,
    OAuth2Config,
    OidcConfig,
    SamlConfig,
)
from bigfootlive.tenants import service as tenants

FLOW_TTL = 600


class InvalidRedirect(BadRequest):
    code = "invalid_redirect_uri"
    message = "The redirect URI is not allow-listed for this tenant"


class InvalidState(SsoRejected):
    code = "sso_bad_state"
    message = "The sign-in request is unknown, expired or already used"


# The web app's own landing page for a browser sign-in (web/sso.py): always allowed, since it
# is this platform's origin; it checks the browser's binding cookie before using the code.
BROWSER_RETURN_PATH = "/signin/sso/done"


def _check_redirect(state: IdentityState, tenant: Tenant, uri: str | None) -> str | None:
    if uri is None:
        return None
    if uri.startswith(f"{state.settings.public_base_url}{BROWSER_RETURN_PATH}?"):
        return uri
    if uri not in tenants.settings_of(tenant).allowed_redirect_urls:
        raise InvalidRedirect()
    return uri


async def _choose_provider(
    session: AsyncSession, tenant: Tenant, provider_id: uuid.UUID | None, email: str | None
) -> LoadedProvider:
    rows = [r for r in await repo.list_providers(session, tenant.id) if r.enabled]
    if provider_id is not None:
        rows = [r for r in rows if r.id == provider_id]
    elif email:
        domain = email.rsplit("@", 1)[-1].lower()
        by_domain = [r for r in rows if domain in (r.config.get("domains") or [])]
        rows = by_domain or rows
    if not rows:
        raise ProviderNotFound("This organisation has no SSO provider", code="sso_not_configured")
    return load(rows[0])


async def initiate(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, body: InitiateIn
) -> InitiateOut:
    await state.limiter.check(state.settings.login_rate_limit, "sso-ip", meta.ip)
    tenant = await tenants.resolve_tenant(session, body.tenant, str(body.email or ""))
    if tenant is None:
        raise NotFound("No such tenant", code="tenant_not_found")
    provider = await _choose_provider(
        session, tenant, body.provider_id, str(body.email) if body.email else None
    )
    redirect_uri = _check_redirect(state, tenant, body.redirect_uri)
    cfg = provider.config
    row = provider.row
    flow_state = random_token()
    flow: dict[str, Any] = {
        "tenant_id": str(tenant.id),
        "provider_id": str(row.id),
        "protocol": row.protocol,
        "redirect_uri": redirect_uri,
    }
    url = await provider.protocol.redirect(state, tenant, row, cfg, flow_state, flow)
    if url is None:  # no redirect: the user signs in with a form
        return InitiateOut(
            provider_id=row.id,
            protocol=row.protocol,
            login_url=f"{state.settings.public_base_url}/api/auth/sso/ldap",
        )
    await state.cache.set(f"sso:flow:{flow_state}", json.dumps(flow).encode(), ttl=FLOW_TTL)
    return InitiateOut(
        provider_id=row.id, protocol=row.protocol, redirect_url=url, state=flow_state
    )


async def _take_flow(state: IdentityState, flow_state: str | None) -> dict[str, Any] | None:
    """The stored flow for `flow_state`, usable once."""
    if not flow_state or len(flow_state) > 200:
        return None
    raw = await state.cache.get(f"sso:flow:{flow_state}")
    if raw is None:
        return None
    if not await state.cache.add(f"sso:flow-used:{flow_state}", b"1", ttl=FLOW_TTL):
        return None
    await state.cache.delete(f"sso:flow:{flow_state}")
    flow = dict(jsonparse.loads(raw))
    act_for_tenant(uuid.UUID(flow["tenant_id"]))  # our own stored flow names its tenant
    return flow


async def _flow_provider(
    session: AsyncSession, flow: dict[str, Any]
) -> tuple[Tenant, LoadedProvider]:
    tenant = await tenants.get_tenant(session, uuid.UUID(flow["tenant_id"]))
    if tenant is None or not tenant.is_active:
        raise InvalidState()
    row = await repo.get_provider(session, tenant.id, uuid.UUID(flow["provider_id"]))
    if row is None or not row.enabled:
        raise ProviderNotFound()
    return tenant, load(row)


async def _failed(
    state: IdentityState,
    meta: RequestMeta,
    exc: BigfootError,
    *,
    tenant_id: uuid.UUID | None,
    provider_id: uuid.UUID | str | None,
    protocol: str,
) -> None:
    await AuditLog.detached(state.db, meta, None).record(
        AuditAction.AUTH_SSO_LOGIN,
        tenant_id=tenant_id,
        target_type="sso_provider",
        target_id=provider_id,
        details={"protocol": protocol, "reason": exc.code},
    )


async def oidc_callback(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    flow_state: str | None,
    code: str | None,
    error: str | None,
) -> SignInOutcome:
    flow = await _take_flow(state, flow_state)
    try:
        if flow is None or flow.get("protocol") not in {"oidc", "oauth2"}:
            raise InvalidState()
        tenant, provider = await _flow_provider(session, flow)
        cfg = provider.config
        assert isinstance(cfg, OidcConfig | OAuth2Config)  # noqa: S101 - protocol checked above
        if error:
            raise SsoRejected(f"The identity provider refused: {error}", code="sso_idp_error")
        if not code:
            raise SsoRejected("The callback has no authorization code", code="sso_no_code")
        ext = await oidc.complete(
            oidc.outbound(state),
            cfg,
            secret(state, provider.row, "client_secret"),
            provider.settings.attribute_mapping,
            redirect_uri=oidc.callback_url(state),
            code=code,
            code_verifier=str(flow["verifier"]),
            nonce=str(flow["nonce"]),
        )
        return await sign_in(
            state, session, meta, tenant, provider, ext, redirect_uri=flow.get("redirect_uri")
        )
    except BigfootError as exc:
        await _failed(
            state,
            meta,
            exc,
            tenant_id=uuid.UUID(flow["tenant_id"]) if flow else None,
            provider_id=flow["provider_id"] if flow else None,
            protocol=flow["protocol"] if flow else "oidc",
        )
        raise


async def _tenant_provider(
    session: AsyncSession, tenant_slug: str, provider_id: uuid.UUID, protocol: str
) -> tuple[Tenant, LoadedProvider]:
    tenant = await tenants.get_tenant_by_slug(session, tenant_slug)
    if tenant is None or not tenant.is_active:
        raise ProviderNotFound()
    act_for_tenant(tenant.id)  # the sign-in names its tenant (row-level security)
    row = await repo.get_provider(session, tenant.id, provider_id)
    if row is None or row.protocol != protocol:
        raise ProviderNotFound()
    return tenant, load(row)


async def saml_metadata(
    state: IdentityState, session: AsyncSession, tenant_slug: str, provider_id: uuid.UUID
) -> str:
    tenant, provider = await _tenant_provider(session, tenant_slug, provider_id, "saml")
    cfg = provider.config
    assert isinstance(cfg, SamlConfig)  # noqa: S101 - protocol checked by _tenant_provider
    assert cfg.idp_metadata_xml  # noqa: S101 - filled when saved
    sp = saml.sp_endpoints(state, tenant.slug, provider.row.id)
    return await asyncio.to_thread(saml.sp_metadata, sp, cfg, cfg.idp_metadata_xml)


async def saml_acs(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    tenant_slug: str,
    provider_id: uuid.UUID,
    saml_response: str,
    relay_state: str | None,
) -> SignInOutcome:
    tenant, provider = await _tenant_provider(session, tenant_slug, provider_id, "saml")
    try:
        if not provider.row.enabled:
            raise ProviderNotFound()
        cfg = provider.config
        assert isinstance(cfg, SamlConfig)  # noqa: S101 - protocol checked by _tenant_provider
        assert cfg.idp_metadata_xml  # noqa: S101 - filled when saved
        flow = await _take_flow(state, relay_state)
        if flow is not None:
            if flow.get("protocol") != "saml" or flow.get("provider_id") != str(provider_id):
                raise InvalidState()
            expected, redirect_uri = str(flow["request_id"]), flow.get("redirect_uri")
        elif relay_state and not relay_state.startswith(("https://", "http://")):
            raise InvalidState()  # a flow token we no longer know: expired or replayed
        else:
            # IdP-initiated: RelayState, if any, is where the user wants to go.
            expected = None
            redirect_uri = _check_redirect(state, tenant, relay_state) if relay_state else None
        result = await asyncio.to_thread(
            parse_response,
            saml.sp_endpoints(state, tenant.slug, provider.row.id),
            cfg,
            cfg.idp_metadata_xml,
            provider.settings.attribute_mapping,
            saml_response_b64=saml_response,
            expected_request_id=expected,
        )
        now = utcnow()
        lifetime = (
            (result.not_on_or_after - now).total_seconds() if result.not_on_or_after else 3600
        )
        fresh = await state.cache.add(
            f"sso:saml:seen:{provider.row.id}:{result.assertion_id}",
            b"1",
            ttl=max(60.0, lifetime + cfg.clock_skew_seconds),
        )
        if not fresh:
            raise SsoRejected("This assertion was already used", code="saml_replayed")
        return await sign_in(
            state, session, meta, tenant, provider, result.identity, redirect_uri=redirect_uri
        )
    except BigfootError as exc:
        await _failed(
            state, meta, exc, tenant_id=tenant.id, provider_id=provider_id, protocol="saml"
        )
        raise


async def ldap_login(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, body: LdapLoginIn
) -> SignInOutcome:
    settings = state.settings
    await state.limiter.check(settings.login_rate_limit, "login-ip", meta.ip)
    tenant = await tenants.get_tenant_by_slug(session, body.tenant)
    if tenant is None or not tenant.is_active:
        raise NotFound("No such tenant", code="tenant_not_found")
    act_for_tenant(tenant.id)  # the sign-in names its tenant (row-level security)
    await state.limiter.check(
        settings.login_rate_limit, "ldap-account", str(tenant.id), body.username.lower()
    )
    rows = [
        r
        for r in await repo.list_providers(session, tenant.id)
        if r.enabled and r.protocol == "ldap"
    ]
    if body.provider_id is not None:
        rows = [r for r in rows if r.id == body.provider_id]
    if not rows:
        raise ProviderNotFound()
    provider = load(rows[0])
    cfg = provider.config
    assert isinstance(cfg, LdapConfig)  # noqa: S101 - filtered above
    try:
        await check_ldap_url(cfg.url, settings.sso_allow_private_networks)
        ext = await asyncio.to_thread(
            ldap.authenticate,
            cfg,
            secret(state, provider.row, "bind_password"),
            provider.settings.attribute_mapping,
            username=body.username,
            password=body.password,
        )
        return await sign_in(state, session, meta, tenant, provider, ext, redirect_uri=None)
    except BigfootError as exc:
        await _failed(
            state, meta, exc, tenant_id=tenant.id, provider_id=provider.row.id, protocol="ldap"
        )
        raise


async def exchange(state: IdentityState, code: str) -> dict[str, Any]:
    """Trade a one-time handoff code (from a redirect) for the sign-in result."""
    raw = await state.cache.get(f"sso:handoff:{code}")
    if raw is None or not await state.cache.add(f"sso:handoff-used:{code}", b"1", ttl=HANDOFF_TTL):
        raise InvalidState("The sign-in code is unknown, expired or already used")
    await state.cache.delete(f"sso:handoff:{code}")
    try:
        return dict(
            jsonparse.loads(state.secrets.decrypt(raw.decode(), context=f"sso-handoff:{code}"))
        )
    except (DecryptionError, ValueError) as exc:
        raise InvalidState() from exc
