"""The admin console's single sign-on: providers (list, create from a template, edit with
secrets never shown back, disable, delete), the connection test with the real checks' results
(`sso.diagnostics`), the metadata/JWKS refresh status (and a refresh now), the SP metadata
download of SAML providers, "SSO required" with its break-glass admins, and the tenant's
verified domains. The services of `/api/tenant/sso/*`, with its step-up on changes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError, NotFound
from bigfootlive.identity.ports import IdentityState
from bigfootlive.sso import admin, diagnostics, refresh
from bigfootlive.sso import repository as sso_repo
from bigfootlive.sso.schemas import ProviderOut
from bigfootlive.sso.templates import BY_KEY, TEMPLATES
from bigfootlive.tenants import service as tenants
from bigfootlive.web.admin import sso_forms
from bigfootlive.web.admin.common import (
    admin_router,
    confirm,
    form_problems,
    message_of,
    step_up,
)
from bigfootlive.web.guard import console_admin
from bigfootlive.web.render import page, redirect
from bigfootlive.web.session import BrowserSubject

router = admin_router()
BLANK = {"oidc": "OpenID Connect", "oauth2": "OAuth 2.0", "saml": "SAML 2.0", "ldap": "LDAP"}
_NOTICES = {"saved": "Saved.", "refreshed": "Metadata refreshed.", "disabled": "Disabled."}


def _sso_admin(subject: AuthSubject | None) -> AuthSubject:
    return console_admin(subject, Permission.SSO_MANAGE)


async def _provider(
    state: IdentityState, session: AsyncSession, admin_: AuthSubject, provider_id: uuid.UUID
) -> ProviderOut:
    tenant = await tenants.require_tenant(session, admin_.tenant_id)
    [found] = await admin.list_providers(state, session, tenant, provider_id)
    return found


def _form_context(
    protocol: str, values: dict[str, str], domains: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "protocol": protocol,
        "protocol_name": BLANK[protocol],
        "fields": sso_forms.fields_of(protocol),
        "secret_names": sso_forms.SECRETS.get(protocol, []),
        "mapping_keys": sso_forms.MAPPING_KEYS,
        "values": values,
        "roles": [r.value for r in Role],
        "verified_domains": domains,
        **extra,
    }


async def _domains(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    return sorted(await sso_repo.verified_domains(session, tenant_id))


@router.get("/sso")
async def providers(
    request: Request, subject: BrowserSubject, state: State, session: ReadSession
) -> Response:
    admin_ = _sso_admin(subject)
    tenant = await tenants.require_tenant(session, admin_.tenant_id)
    context = {
        "providers": await admin.list_providers(state, session, tenant, None),
        "templates": TEMPLATES,
        "blank": BLANK,
        "domains": await tenants.email_domains(session, tenant.id),
        "verified": await _domains(session, tenant.id),
    }
    return page(request, "admin/sso.html", context)


@router.get("/sso/new")
async def new_provider(
    request: Request,
    subject: BrowserSubject,
    session: ReadSession,
    template: Annotated[str, Query(max_length=40)] = "",
    protocol: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The form, pre-filled from a template (`?template=okta`) or blank (`?protocol=ldap`)."""
    admin_ = _sso_admin(subject)
    found = BY_KEY.get(template)
    if found is not None:
        protocol = found.protocol
        settings = {
            "name": found.name,
            "config": found.config,
            "attribute_mapping": found.attribute_mapping.model_dump(),
        }
        notes = found.notes
    elif protocol in BLANK:
        settings, notes = {"name": BLANK[protocol]}, ""
    else:
        raise NotFound("No such template", code="template_not_found")
    values = sso_forms.values_of(protocol, settings)
    domains = await _domains(session, admin_.tenant_id)
    context = _form_context(protocol, values, domains, notes=notes, action="/admin/sso")
    return page(request, "admin/sso_form.html", context)


async def _save(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    admin_: AuthSubject,
    provider_id: uuid.UUID | None,
    back: str,
) -> Response:
    form = await request.form()
    protocol = str(form.get("protocol") or "")
    if protocol not in BLANK:
        raise NotFound("No such protocol", code="protocol_not_found")
    if provider_id is not None:  # another tenant's provider: not found, before anything else
        current = await _provider(state, session, admin_, provider_id)
        protocol = current.protocol
    if (stepped := await step_up(request, state, session, meta, admin_, back)) is not None:
        return stepped
    domains = await _domains(session, admin_.tenant_id)
    action = back if provider_id else "/admin/sso"
    try:
        body = sso_forms.provider_in(protocol, form, provider_id)
        saved = await admin.save_provider(state, session, meta, admin_, body)
    except (ValidationError, BigfootError) as exc:
        await session.rollback()
        if isinstance(exc, ValidationError):
            error, status = "Check the form: " + form_problems(exc), 422
        else:
            error, status = message_of(exc), exc.status_code
        values = sso_forms.form_values(protocol, form)
        context = _form_context(protocol, values, domains, error=error, action=action)
        return page(request, "admin/sso_form.html", context, status)
    return redirect(request, f"/admin/sso/{saved.id}?done=saved")


@router.post("/sso")
async def create_provider(
    request: Request, subject: BrowserSubject, state: State, session: DbSession, meta: Meta
) -> Response:
    return await _save(request, state, session, meta, _sso_admin(subject), None, "/admin/sso")


@router.get("/sso/{provider_id:uuid}")
async def provider_page(
    request: Request,
    provider_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    admin_ = _sso_admin(subject)
    provider = await _provider(state, session, admin_, provider_id)
    values = sso_forms.values_of(provider.protocol, provider.model_dump(mode="json"))
    domains = await _domains(session, admin_.tenant_id)
    context = _form_context(
        provider.protocol, values, domains, provider=provider,
        action=f"/admin/sso/{provider_id}", notice=_NOTICES.get(done),
    )  # fmt: skip
    return page(request, "admin/sso_form.html", context)


@router.post("/sso/{provider_id:uuid}")
async def update_provider(
    request: Request,
    provider_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    admin_ = _sso_admin(subject)
    back = f"/admin/sso/{provider_id}"
    return await _save(request, state, session, meta, admin_, provider_id, back)


@router.post("/sso/{provider_id:uuid}/test")
async def run_connection_test(
    request: Request,
    provider_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    sample_username: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Run the protocol's real checks (discovery, JWKS, token endpoint, LDAP bind and search,
    SAML metadata and certificates) and show each one's result; audited."""
    admin_ = _sso_admin(subject)
    provider = await _provider(state, session, admin_, provider_id)
    result = await diagnostics.test_provider(
        state, session, meta, admin_, provider_id, sample_username.strip() or None
    )
    return page(request, "admin/sso_test.html", {"provider": provider, "result": result})


@router.post("/sso/{provider_id:uuid}/refresh")
async def refresh_metadata(
    request: Request,
    provider_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    """Refresh the IdP's published metadata now (OIDC discovery and JWKS, SAML metadata URL),
    as the background refresh does; the page shows the outcome."""
    admin_ = _sso_admin(subject)
    await _provider(state, session, admin_, provider_id)
    await refresh.refresh_provider(state, provider_id)
    return redirect(request, f"/admin/sso/{provider_id}?done=refreshed")


@router.post("/sso/{provider_id:uuid}/delete")
async def delete_provider(
    request: Request,
    provider_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    purge: Annotated[bool, Form()] = False,
    confirm_: Annotated[str, Form(alias="confirm", max_length=3)] = "",
) -> Response:
    """Disable (or, with `purge`, delete) a provider; confirmed, with step-up as the API."""
    admin_ = _sso_admin(subject)
    back = f"/admin/sso/{provider_id}"
    provider = await _provider(state, session, admin_, provider_id)
    if confirm_ != "yes":
        verb = "Delete" if purge else "Disable"
        question = f"{verb} the provider “{provider.name}”? Its users cannot sign in through it."
        fields = {"purge": "true" if purge else "false"}
        action = f"{back}/delete"
        return confirm(request, action=action, question=question, fields=fields, back=back)
    if (stepped := await step_up(request, state, session, meta, admin_, back)) is not None:
        return stepped
    await admin.delete_provider(session, meta, admin_, provider_id, purge=purge)
    return redirect(request, "/admin/sso" if purge else f"{back}?done=disabled")
