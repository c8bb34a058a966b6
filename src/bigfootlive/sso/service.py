"""SSO rules: provider configuration, the sign-in flows, JIT provisioning and role mapping.

Every flow ends in `identity.service.finish_sign_in`, like a password sign-in, so sessions,
tokens and the tenant's MFA policy are the same whatever the method.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import (
    BadRequest,
    BigfootError,
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
)
from bigfootlive.identity import lockout
from bigfootlive.identity import repository as identity_repo
from bigfootlive.identity import service as identity
from bigfootlive.identity.ports import IdentityState
from bigfootlive.kit import jsonparse
from bigfootlive.kit.crypto import DecryptionError, random_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import SsoIdentity, SsoProvider, Tenant, User
from bigfootlive.sso import ldap as ldap_adapter
from bigfootlive.sso import oidc, saml
from bigfootlive.sso import repository as repo
from bigfootlive.sso.base import ExternalIdentity, SsoConfigError, SsoRejected
from bigfootlive.sso.net import check_ldap_url, check_outbound_url
from bigfootlive.sso.schemas import (
    Check,
    InitiateIn,
    InitiateOut,
    LdapConfig,
    LdapLoginIn,
    MetadataRefreshOut,
    OAuth2Config,
    OidcConfig,
    ProtocolConfig,
    ProviderIn,
    ProviderOut,
    ProviderSettings,
    SamlConfig,
    TestOut,
)
from bigfootlive.tenants import service as tenants

FLOW_TTL = 600
HANDOFF_TTL = 60
SECRET_NAMES = ("client_secret", "bind_password")


class ProviderNotFound(NotFound):
    code = "sso_provider_not_found"
    message = "No such SSO provider"


class InvalidRedirect(BadRequest):
    code = "invalid_redirect_uri"
    message = "The redirect URI is not allow-listed for this tenant"


class InvalidState(SsoRejected):
    code = "sso_bad_state"
    message = "The sign-in request is unknown, expired or already used"


# ---------------------------------------------------------------- URLs


def callback_url(state: IdentityState) -> str:
    return f"{state.settings.public_base_url}/api/auth/sso/callback"


def saml_endpoints(
    state: IdentityState, tenant_slug: str, provider_id: uuid.UUID
) -> saml.SpEndpoints:
    base = f"{state.settings.public_base_url}/api/auth/sso/saml/{tenant_slug}/{provider_id}"
    return saml.SpEndpoints(entity_id=f"{base}/metadata", acs_url=f"{base}/acs")


def outbound(state: IdentityState) -> oidc.Outbound:
    return oidc.Outbound(
        cache=state.cache,
        timeout=state.settings.sso_http_timeout_seconds,
        allow_private_networks=state.settings.sso_allow_private_networks,
    )


# ---------------------------------------------------------------- provider configuration


@dataclass(frozen=True, slots=True)
class LoadedProvider:
    row: SsoProvider
    settings: ProviderSettings

    @property
    def config(self) -> ProtocolConfig:
        return self.settings.config


def load(row: SsoProvider) -> LoadedProvider:
    return LoadedProvider(row=row, settings=ProviderSettings.model_validate(row.config))


def _secret(state: IdentityState, row: SsoProvider, name: str) -> str | None:
    sealed = (row.secrets or {}).get(name)
    if not sealed:
        return None
    try:
        return state.secrets.decrypt(str(sealed), context=f"sso:{row.id}:{name}")
    except DecryptionError as exc:
        raise SsoConfigError(
            f"The stored {name} cannot be decrypted (was ENCRYPTION_KEYS changed?)",
            code="sso_secret_unreadable",
        ) from exc


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
    if row.protocol in {"oidc", "oauth2"}:
        out.callback_url = callback_url(state)
    elif row.protocol == "saml":
        sp = saml_endpoints(state, tenant_slug, row.id)
        out.sp_entity_id = sp.entity_id
        out.sp_metadata_url = sp.entity_id
        out.acs_url = sp.acs_url
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


async def fetch_saml_metadata(state: IdentityState, url: str) -> str:
    await check_outbound_url(url, state.settings.sso_allow_private_networks)
    out = outbound(state)
    try:
        async with out.client() as http:
            response = await http.get(url)
    except Exception as exc:
        raise SsoConfigError(
            f"Could not fetch the IdP metadata from {url}: {type(exc).__name__}",
            code="sso_unreachable",
        ) from exc
    if response.status_code != 200:
        raise SsoConfigError(f"{url} answered HTTP {response.status_code}", code="sso_unreachable")
    if len(response.content) > saml.MAX_METADATA_BYTES:
        raise SsoConfigError("The IdP metadata is too large", code="sso_bad_metadata")
    return response.text


def set_refresh_status(
    row: SsoProvider, *, now: dt.datetime | None, error: str | None, refreshed: bool
) -> None:
    """Record a metadata refresh attempt at `now` (None: forget the status)."""
    row.metadata_checked_at = now
    row.metadata_refresh_status = None if now is None else ("error" if error else "ok")
    row.metadata_refresh_error = error
    if refreshed or now is None:
        row.metadata_refreshed_at = now


def _outbound_urls(config: ProtocolConfig) -> list[tuple[str, str]]:
    """(field, URL) of every address the server connects to for this provider."""
    if isinstance(config, OidcConfig):
        return [("issuer", config.issuer)]  # discovery, then the endpoints it names
    if isinstance(config, OAuth2Config):
        return [
            ("authorize_url", config.authorize_url),  # fetched by the connection test
            ("token_url", config.token_url),
            ("userinfo_url", config.userinfo_url),
        ]
    if isinstance(config, SamlConfig):
        return [("idp_metadata_url", config.idp_metadata_url)] if config.idp_metadata_url else []
    return [("url", config.url)]


async def _refuse_internal_urls(state: IdentityState, config: ProtocolConfig) -> None:
    """The SSRF guard at save time too, so a provider that could never be used is not saved
    (each URL is checked again when used: a name may resolve elsewhere by then)."""
    allow_private = state.settings.sso_allow_private_networks
    check = check_ldap_url if isinstance(config, LdapConfig) else check_outbound_url
    for field, url in _outbound_urls(config):
        try:
            await check(url, allow_private)
        except SsoConfigError as exc:
            raise Unprocessable(exc.message, code=exc.code, field=f"config.{field}") from exc


async def save_provider(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    body: ProviderIn,
) -> ProviderOut:
    await _refuse_internal_urls(state, body.config)
    tenant = await tenants.require_tenant(session, subject.tenant_id)
    verified = await repo.verified_domains(session, tenant.id)
    unverified = [d for d in body.domains if d not in verified]
    if unverified:
        raise Unprocessable(
            "These domains are not verified for this tenant",
            code="domain_not_verified",
            domains=unverified,
        )
    config = body.config
    fetched_at = None
    if isinstance(config, SamlConfig):
        if config.idp_metadata_url:
            fetched_at = utcnow()
            xml = await fetch_saml_metadata(state, config.idp_metadata_url)
            config = config.model_copy(update={"idp_metadata_xml": xml})
        assert config.idp_metadata_xml is not None  # noqa: S101 - checked by SamlConfig
        await asyncio.to_thread(saml.idp_info, config.idp_metadata_xml)
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


async def test_provider(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    provider_id: uuid.UUID,
    sample_username: str | None,
) -> TestOut:
    row = await repo.get_provider(session, subject.tenant_id, provider_id)
    if row is None:
        raise ProviderNotFound()
    loaded = load(row)
    cfg = loaded.config
    checks: list[Check] = []
    try:
        if isinstance(cfg, OidcConfig):
            checks += await _test_oidc(state, cfg)
        elif isinstance(cfg, OAuth2Config):
            checks += await _test_oauth2(state, cfg)
        elif isinstance(cfg, SamlConfig):
            checks += await _test_saml(state, cfg)
        else:
            await check_ldap_url(cfg.url, state.settings.sso_allow_private_networks)
            result = await asyncio.to_thread(
                ldap_adapter.test_connection,
                cfg,
                _secret(state, row, "bind_password"),
                sample_username,
            )
            checks += [Check(name=n, ok=ok, detail=d) for n, ok, d in result]
    except BigfootError as exc:
        checks.append(Check(name="error", ok=False, detail=exc.message))
    ok = bool(checks) and all(c.ok for c in checks)
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.SSO_PROVIDER_TEST,
        tenant_id=subject.tenant_id,
        result="success" if ok else "failure",
        target_type="sso_provider",
        target_id=row.id,
        details={"failed": [c.name for c in checks if not c.ok]},
    )
    return TestOut(ok=ok, protocol=row.protocol, checks=checks)


async def _test_oidc(state: IdentityState, cfg: OidcConfig) -> list[Check]:
    out = outbound(state)
    checks = []
    try:
        meta = await oidc.discover(out, cfg, fresh=True)
    except BigfootError as exc:
        return [Check(name="discovery", ok=False, detail=exc.message)]
    checks.append(
        Check(name="discovery", ok=True, detail=f"issuer {meta['issuer']} published its metadata")
    )
    try:
        keys = await oidc.jwks(out, str(meta["jwks_uri"]), fresh=True)
        count = len(keys.keys)
        checks.append(
            Check(name="jwks", ok=count > 0, detail=f"{count} signing key(s) at {meta['jwks_uri']}")
        )
    except BigfootError as exc:
        checks.append(Check(name="jwks", ok=False, detail=exc.message))
    algs = set(meta.get("id_token_signing_alg_values_supported") or ["RS256"])
    usable = sorted(algs & oidc.ASYMMETRIC_ALGS)
    checks.append(
        Check(
            name="algorithms",
            ok=bool(usable),
            detail=f"ID token algorithms accepted: {', '.join(usable) or 'none'}",
        )
    )
    return checks


async def _test_oauth2(state: IdentityState, cfg: OAuth2Config) -> list[Check]:
    checks = []
    out = outbound(state)
    for name, url in (
        ("authorize_url", cfg.authorize_url),
        ("token_url", cfg.token_url),
        ("userinfo_url", cfg.userinfo_url),
    ):
        try:
            await check_outbound_url(url, out.allow_private_networks)
            async with out.client() as http:
                response = await http.get(url)
            checks.append(
                Check(name=name, ok=True, detail=f"{url} answered HTTP {response.status_code}")
            )
        except BigfootError as exc:
            checks.append(Check(name=name, ok=False, detail=exc.message))
        except Exception as exc:
            checks.append(Check(name=name, ok=False, detail=f"{url}: {type(exc).__name__}"))
    return checks


async def _test_saml(state: IdentityState, cfg: SamlConfig) -> list[Check]:
    checks = []
    xml = cfg.idp_metadata_xml
    if cfg.idp_metadata_url:
        try:
            xml = await fetch_saml_metadata(state, cfg.idp_metadata_url)
            checks.append(Check(name="metadata_fetch", ok=True, detail=cfg.idp_metadata_url))
        except BigfootError as exc:
            checks.append(Check(name="metadata_fetch", ok=False, detail=exc.message))
    if not xml:
        return checks
    try:
        info = await asyncio.to_thread(saml.idp_info, xml)
    except BigfootError as exc:
        return [*checks, Check(name="metadata", ok=False, detail=exc.message)]
    checks.append(
        Check(name="metadata", ok=True, detail=f"IdP {info.entity_id}, SSO at {info.sso_url}")
    )
    for ok, detail in saml.certificate_report(info, utcnow()):
        checks.append(Check(name="certificate", ok=ok, detail=detail))
    return checks


# ---------------------------------------------------------------- flows: start


def _check_redirect(tenant: Tenant, uri: str | None) -> str | None:
    if uri is None:
        return None
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
    redirect_uri = _check_redirect(tenant, body.redirect_uri)
    cfg = provider.config
    row = provider.row
    if isinstance(cfg, LdapConfig):
        return InitiateOut(
            provider_id=row.id,
            protocol=row.protocol,
            login_url=f"{state.settings.public_base_url}/api/auth/sso/ldap",
        )
    flow_state = random_token()
    flow: dict[str, Any] = {
        "tenant_id": str(tenant.id),
        "provider_id": str(row.id),
        "protocol": row.protocol,
        "redirect_uri": redirect_uri,
    }
    if isinstance(cfg, SamlConfig):
        assert cfg.idp_metadata_xml is not None  # noqa: S101 - filled when saved
        request_id, url = await asyncio.to_thread(
            saml.authn_request,
            saml_endpoints(state, tenant.slug, row.id),
            cfg,
            cfg.idp_metadata_xml,
            relay_state=flow_state,
        )
        flow["request_id"] = request_id
    else:
        flow["nonce"] = random_token(16)
        flow["verifier"] = random_token(48)
        url = await oidc.authorization_url(
            outbound(state),
            cfg,
            redirect_uri=callback_url(state),
            state=flow_state,
            nonce=flow["nonce"],
            code_verifier=flow["verifier"],
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
    return dict(jsonparse.loads(raw))


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


# ---------------------------------------------------------------- flows: finish


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """The result of `finish_sign_in`, and where to send the browser with it, if anywhere."""

    result: BaseModel
    redirect_uri: str | None = None
    handoff_code: str | None = None

    def redirect_location(self) -> str | None:
        if self.redirect_uri is None or self.handoff_code is None:
            return None
        sep = "&" if "?" in self.redirect_uri else "?"
        return f"{self.redirect_uri}{sep}{urlencode({'sso_code': self.handoff_code})}"


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
            outbound(state),
            cfg,
            _secret(state, provider.row, "client_secret"),
            provider.settings.attribute_mapping,
            redirect_uri=callback_url(state),
            code=code,
            code_verifier=str(flow["verifier"]),
            nonce=str(flow["nonce"]),
        )
        return await _sign_in(
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
    sp = saml_endpoints(state, tenant.slug, provider.row.id)
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
            redirect_uri = _check_redirect(tenant, relay_state) if relay_state else None
        result = await asyncio.to_thread(
            saml.parse_response,
            saml_endpoints(state, tenant.slug, provider.row.id),
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
        return await _sign_in(
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
            ldap_adapter.authenticate,
            cfg,
            _secret(state, provider.row, "bind_password"),
            provider.settings.attribute_mapping,
            username=body.username,
            password=body.password,
        )
        return await _sign_in(state, session, meta, tenant, provider, ext, redirect_uri=None)
    except BigfootError as exc:
        await _failed(
            state, meta, exc, tenant_id=tenant.id, provider_id=provider.row.id, protocol="ldap"
        )
        raise


def mapped_role(settings: ProviderSettings, groups: list[str]) -> Role:
    """The highest role any of the user's groups maps to, else the provider's default role."""
    lowered = {k.lower(): v for k, v in settings.role_mapping.items()}
    roles = [lowered[g.lower()] for g in groups if g.lower() in lowered]
    return max(roles, default=settings.default_role)


async def _sign_in(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    tenant: Tenant,
    provider: LoadedProvider,
    ext: ExternalIdentity,
    *,
    redirect_uri: str | None,
) -> SignInOutcome:
    """Find, link or provision the user of `tenant`, apply role mapping, and finish sign-in."""
    settings = provider.settings
    row = provider.row
    link = await repo.find_link(session, tenant.id, row.id, ext.subject)
    provisioned = False
    if link is not None:
        sso_identity, user = link
    else:
        if not ext.email:
            raise SsoRejected("The identity provider sent no email address", code="sso_no_email")
        found = await identity_repo.get_user_by_email(session, tenant.id, ext.email)
        if found is not None:
            if not ext.email_verified:
                raise SsoRejected(
                    "The identity provider did not verify this email address",
                    code="sso_email_unverified",
                )
            user = found
        elif settings.jit_provisioning:
            user = await identity.create_account(
                state,
                session,
                tenant=tenant,
                email=ext.email,
                display_name=(ext.name or ext.email.split("@")[0])[:100],
                role=mapped_role(settings, ext.groups),
                password=None,
                email_verified=ext.email_verified,
            )
            provisioned = True
            await AuditLog(session, meta, user.id).record(
                AuditAction.SSO_USER_PROVISIONED,
                tenant_id=tenant.id,
                target_type="user",
                target_id=user.id,
                details={"provider_id": str(row.id), "role": user.role},
            )
        else:
            raise Forbidden(
                "No account exists for this user and provisioning is off", code="sso_no_account"
            )
        sso_identity = SsoIdentity(
            tenant_id=tenant.id, provider_id=row.id, user_id=user.id, subject=ext.subject
        )
        session.add(sso_identity)
    if user.tenant_id != tenant.id:  # unreachable by construction; belt and braces
        raise SsoRejected()
    if not user.is_active:
        raise Forbidden("The account is disabled", code="account_disabled")
    await _apply_role(session, meta, tenant, user, mapped_role(settings, ext.groups))
    if ext.name and ext.name[:100] != user.display_name:
        user.display_name = ext.name[:100]
    now = utcnow()
    sso_identity.last_login_at = now
    user.last_login_at = now
    await lockout.clear(session, tenant.id, user.email)
    method = row.protocol
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_LOGIN,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={
            "method": f"sso:{method}",
            "provider_id": str(row.id),
            "provisioned": provisioned,
            "idp_mfa": ext.mfa,
        },
    )
    amr = ["ldap"] if method == "ldap" else ["ext", method]
    if ext.mfa:
        amr.append("mfa")
    result = await identity.finish_sign_in(
        state, session, user=user, tenant=tenant, meta=meta, amr=amr
    )
    if redirect_uri is None:
        return SignInOutcome(result=result)
    code = random_token()
    sealed = state.secrets.encrypt(result.model_dump_json(), context=f"sso-handoff:{code}")
    await state.cache.set(f"sso:handoff:{code}", sealed.encode(), ttl=HANDOFF_TTL)
    return SignInOutcome(result=result, redirect_uri=redirect_uri, handoff_code=code)


async def _apply_role(
    session: AsyncSession, meta: RequestMeta, tenant: Tenant, user: User, role: Role
) -> None:
    if user.role == role.value:
        return
    try:
        await tenants.ensure_not_last_admin(session, user, role, None)
    except Conflict:
        # Never let an IdP's group mapping leave the tenant without an admin.
        await AuditLog(session, meta, user.id).record(
            AuditAction.SSO_ROLE_MAPPING_SKIPPED,
            tenant_id=tenant.id,
            target_type="user",
            target_id=user.id,
            details={"kept": user.role, "mapped": role.value, "reason": "last_admin"},
        )
        return
    await AuditLog(session, meta, user.id).record(
        AuditAction.TENANT_ROLE_CHANGE,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={"from": user.role, "to": role.value, "source": "sso_role_mapping"},
    )
    user.role = role.value


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
