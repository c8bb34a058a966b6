from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse

from bigfootlive.authz.deps import require
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BadRequest
from bigfootlive.identity.schemas import TokenPair
from bigfootlive.kit import jsonparse
from bigfootlive.mfa.deps import RecentMfa
from bigfootlive.routing import JsonRoute
from bigfootlive.sso import admin, diagnostics, flows, provisioning
from bigfootlive.sso.schemas import (
    CallbackIn,
    ExchangeIn,
    InitiateIn,
    InitiateOut,
    LdapLoginIn,
    ProviderIn,
    ProviderOut,
    Template,
    TestIn,
    TestOut,
)
from bigfootlive.sso.templates import TEMPLATES
from bigfootlive.tenants import service as tenants

admin_router = APIRouter(prefix="/api/tenant/sso", tags=["tenant sso"], route_class=JsonRoute)
router = APIRouter(prefix="/api/auth/sso", tags=["sso"], route_class=JsonRoute)

SsoManager = Annotated[AuthSubject, Depends(require(Permission.SSO_MANAGE))]
SIGN_IN_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": TokenPair, "description": "Signed in (or an MFA challenge, when required)"},
    303: {"description": "Signed in; redirected to the allow-listed redirect URI with sso_code"},
}


def _respond(outcome: provisioning.SignInOutcome) -> Response:
    location = outcome.redirect_location()
    if location is not None:
        return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)
    return JSONResponse(outcome.result.model_dump(mode="json"))


# ---------------------------------------------------------------- tenant admins


@admin_router.get("/provider")
async def get_providers(
    subject: SsoManager,
    state: State,
    session: ReadSession,
    id: Annotated[uuid.UUID | None, Query(description="One provider; all when omitted")] = None,
) -> list[ProviderOut]:
    tenant = await tenants.require_tenant(session, subject.tenant_id)
    return await admin.list_providers(state, session, tenant, id)


@admin_router.post("/provider")
async def save_provider(
    body: ProviderIn,
    subject: SsoManager,
    _: RecentMfa,
    state: State,
    session: DbSession,
    meta: Meta,
) -> ProviderOut:
    """Create a provider (no `id`) or replace the settings of an existing one."""
    return await admin.save_provider(state, session, meta, subject, body)


@admin_router.delete("/provider", status_code=status.HTTP_204_NO_CONTENT)
async def delete_provider(
    subject: SsoManager,
    _: RecentMfa,
    session: DbSession,
    meta: Meta,
    id: Annotated[uuid.UUID, Query()],
    purge: Annotated[bool, Query(description="Delete instead of disabling")] = False,
) -> Response:
    await admin.delete_provider(session, meta, subject, id, purge=purge)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin_router.post("/test")
async def test_provider(
    body: TestIn, subject: SsoManager, state: State, session: DbSession, meta: Meta
) -> TestOut:
    return await diagnostics.test_provider(
        state, session, meta, subject, body.provider_id, body.sample_username
    )


@admin_router.get("/templates")
async def templates(subject: SsoManager) -> list[Template]:
    return TEMPLATES


# ---------------------------------------------------------------- sign-in flows


@router.post("/initiate")
async def initiate(body: InitiateIn, state: State, session: ReadSession, meta: Meta) -> InitiateOut:
    return await flows.initiate(state, session, meta, body)


@router.get("/callback", responses=SIGN_IN_RESPONSES, response_model=None)
async def callback_get(
    state: State,
    session: DbSession,
    meta: Meta,
    state_param: Annotated[str | None, Query(alias="state", max_length=200)] = None,
    code: Annotated[str | None, Query(max_length=4000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    outcome = await flows.oidc_callback(
        state, session, meta, flow_state=state_param, code=code, error=error
    )
    return _respond(outcome)


@router.post("/callback", responses=SIGN_IN_RESPONSES, response_model=None)
async def callback_post(request: Request, state: State, session: DbSession, meta: Meta) -> Response:
    """OIDC/OAuth2 callback posted as JSON (by an app) or as a form (response_mode=form_post)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = CallbackIn.model_validate(jsonparse.loads(await request.body()))
        except jsonparse.MalformedJson as exc:
            raise BadRequest("The callback body is not valid JSON", code="malformed_json") from exc
        except ValueError as exc:
            raise BadRequest("The callback body is not valid", code="validation_error") from exc
    else:
        form = await request.form()
        try:
            body = CallbackIn.model_validate(
                {
                    k: v
                    for k, v in form.items()
                    if isinstance(v, str) and k in CallbackIn.model_fields
                }
            )
        except ValueError as exc:
            raise BadRequest("The callback body is not valid", code="validation_error") from exc
    outcome = await flows.oidc_callback(
        state, session, meta, flow_state=body.state, code=body.code, error=body.error
    )
    return _respond(outcome)


@router.post("/exchange", responses=SIGN_IN_RESPONSES, response_model=None)
async def exchange(body: ExchangeIn, state: State) -> JSONResponse:
    """Trade the one-time `sso_code` from a redirect for the tokens (or MFA challenge)."""
    return JSONResponse(await flows.exchange(state, body.code))


@router.post("/ldap", responses=SIGN_IN_RESPONSES, response_model=None)
async def ldap_login(body: LdapLoginIn, state: State, session: DbSession, meta: Meta) -> Response:
    return _respond(await flows.ldap_login(state, session, meta, body))


@router.get("/saml/{tenant}/{provider_id}/metadata")
async def saml_metadata(
    tenant: str, provider_id: uuid.UUID, state: State, session: ReadSession
) -> Response:
    xml = await flows.saml_metadata(state, session, tenant, provider_id)
    return Response(content=xml, media_type="application/samlmetadata+xml")


@router.post("/saml/{tenant}/{provider_id}/acs", responses=SIGN_IN_RESPONSES, response_model=None)
async def saml_acs(
    tenant: str,
    provider_id: uuid.UUID,
    state: State,
    session: DbSession,
    meta: Meta,
    saml_response: Annotated[str, Form(alias="SAMLResponse", max_length=400_000)],
    relay_state: Annotated[str | None, Form(alias="RelayState", max_length=2000)] = None,
) -> Response:
    """Assertion consumer service (HTTP-POST binding), SP- and IdP-initiated."""
    outcome = await flows.saml_acs(
        state,
        session,
        meta,
        tenant_slug=tenant,
        provider_id=provider_id,
        saml_response=saml_response,
        relay_state=relay_state,
    )
    return _respond(outcome)
