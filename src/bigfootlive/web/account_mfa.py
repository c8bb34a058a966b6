"""Two-step verification pages: the account's factors, enrolling an authenticator app (QR code
rendered server-side) or a passkey (WebAuthn in the browser, `static/js/passkey.mjs`), backup
codes shown once, removal, cancelling a set-up or starting it again (a new key), and the step-up
a sensitive action asks for. (A passkey as the answer to the sign-in challenge:
`web.signin_passkey`.)

The services are the API's (`mfa.enrolment` as `/api/auth/mfa/setup`, `/setup/confirm`,
`/factors`; `mfa.verification` as `/api/auth/mfa/challenge` and `/verify`); so is the step-up
rule (`mfa.policy.ensure_recent_mfa`): an action that needs it answers with the step-up page,
whose verification renews the session cookie's access token."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.subject import AuthSubject
from bigfootlive.composition import AppState
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BadRequest, BigfootError
from bigfootlive.identity.schemas import TokenPair
from bigfootlive.kit import jsonparse
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import challenges, enrolment, policy, verification
from bigfootlive.mfa.base import rules_of
from bigfootlive.mfa.factors import backup_codes
from bigfootlive.mfa.schemas import ConfirmOut, SetupOut, StepUpOut
from bigfootlive.routing import JsonRoute
from bigfootlive.tenants import service as tenants
from bigfootlive.web import session as web_session
from bigfootlive.web.guard import signed_in
from bigfootlive.web.outcome import describe
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import SESSION_COOKIE, BrowserSubject, cookies_of

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)

STEP_UP_COOKIE = "bfl_step_up"
SECURITY = "/account/security"
Name = Annotated[str, Form(max_length=100)]
Code = Annotated[str, Form(max_length=32)]
# A PublicKeyCredential as JSON: a few hundred bytes, a few KB with a large attestation.
Credential = Annotated[str, Form(max_length=20_000)]
Next = Annotated[str, Form(max_length=200)]


def _safe_next(value: str | None, default: str = SECURITY) -> str:
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    return value


def _credential(value: str) -> dict[str, Any]:
    try:
        parsed = jsonparse.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise BadRequest("The passkey's answer is not valid JSON", code="invalid_credential")
    return parsed


# ---------------------------------------------------------------- step-up


async def _step_up_page(
    request: Request,
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    challenge: dict[str, Any],
    next_url: str,
    *,
    error: str | None = None,
    status: int = 401,
) -> Response:
    """The verification a sensitive action asked for: the methods of its challenge (a factor,
    a backup code, or the password for an account without one), a passkey's options ready."""
    token = str(challenge.get("challenge_token") or "")
    listed = challenge.get("methods")
    methods = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else []
    factors = challenge.get("factors")
    passkeys = [
        f for f in (factors if isinstance(factors, list) else [])
        if isinstance(f, dict) and f.get("type") == "webauthn"
    ]  # fmt: skip
    options = None
    try:
        if passkeys:
            factor_id = uuid.UUID(str(passkeys[0].get("id")))
            prepared = await verification.prepare_challenge(
                state, session, meta, token=token, factor_id=factor_id
            )
            options = prepared.webauthn_options
    except (BigfootError, ValueError):
        options = None  # the other methods remain
    context = {
        "methods": methods,
        "options": options,
        "next": next_url,
        "error": error,
        "challenge": _encode(
            {
                "methods": methods,
                "factors": [{"id": f.get("id"), "type": "webauthn"} for f in passkeys[:1]],
            }
        ),
    }
    return page(request, "account/step_up.html", context, status)


def _encode(challenge: dict[str, Any]) -> str:
    """The challenge's public part (methods, the passkey's id), carried by the step-up form so a
    wrong answer can show the same choices again; never its token (that is the cookie)."""
    return base64.urlsafe_b64encode(json.dumps(challenge, default=str).encode()).decode()


def _decode(value: str) -> dict[str, Any]:
    try:
        decoded = jsonparse.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        decoded = None
    return decoded if isinstance(decoded, dict) else {}


async def _guarded(
    request: Request, state: AppState, session: AsyncSession, meta: RequestMeta, exc: BigfootError
) -> Response | None:
    """The step-up page when `exc` asks for one, else None."""
    if exc.code != "step_up_required" or not isinstance(exc.details.get("challenge"), dict):
        return None
    await session.rollback()
    challenge: dict[str, Any] = exc.details["challenge"]
    ttl = state.settings.mfa_challenge_ttl_seconds
    cookies_of(request).set(STEP_UP_COOKIE, str(challenge["challenge_token"]), ttl)
    return await _step_up_page(request, state, session, meta, challenge, SECURITY)


async def pending_key(
    state: AppState,
    session: AsyncSession,
    subject: AuthSubject | None,
    challenge_token: str | None,
    factor_id: uuid.UUID,
) -> dict[str, Any]:
    """`totp_key` of a set-up not yet confirmed, after a wrong code (nothing when it is over)."""
    try:
        actor = await enrolment.resolve_actor(
            state, session, subject=subject, challenge_token=challenge_token
        )
        out = await enrolment.pending_totp(state, session, actor, factor_id)
    except BigfootError:
        return {}
    return totp_key(out) if out is not None else {}


def totp_key(out: SetupOut) -> dict[str, Any]:
    """What `_totp_key.html` shows of an authenticator app's set-up, and the factor to confirm."""
    assert out.totp is not None  # noqa: S101 - a TOTP set-up answers its secret
    svg = base64.b64encode(out.totp.qr_svg.encode()).decode()
    secret = out.totp.secret
    return {
        "factor_id": out.factor.id,
        "qr": f"data:image/svg+xml;base64,{svg}",
        "secret": secret,
        "grouped": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "expires_in": out.expires_in,
    }


@router.post("/account/verify")
async def step_up_verify(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    method: Annotated[str, Form(pattern="^(totp|backup_code|password|webauthn)$")],
    code: Code = "",
    password: Annotated[str, Form(max_length=128)] = "",
    credential: Credential = "",
    challenge: Annotated[str, Form(max_length=8000)] = "",
    next: Next = SECURITY,
) -> Response:
    next_url = _safe_next(next)
    token = request.cookies.get(STEP_UP_COOKIE)
    subject = signed_in(subject, next_url)
    ours = await challenges.load(state, token) if token else None
    if token is None or ours is None or ours.session_id != subject.session_id:
        cookies_of(request).clear(STEP_UP_COOKIE)  # none, over, or another session's
        return redirect(request, next_url)
    try:
        result = await verification.verify(
            state, session, meta, token=token, method=method, factor_id=None,
            code=code.strip().replace(" ", "") or None,
            credential=_credential(credential) if method == "webauthn" else None,
            password=password or None,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        shown = {**_decode(challenge), "challenge_token": token}
        return await _step_up_page(
            request, state, session, meta, shown, next_url, error=describe(exc),
            status=exc.status_code,
        )  # fmt: skip
    jar = cookies_of(request)
    jar.clear(STEP_UP_COOKIE)
    if isinstance(result, StepUpOut):
        jar.set(SESSION_COOKIE, result.access_token, state.settings.refresh_token_ttl_seconds)
    elif isinstance(result, TokenPair):
        web_session.start(request, result)
    return redirect(request, f"{next_url}{'&' if '?' in next_url else '?'}verified=1")


# ---------------------------------------------------------------- the account's factors


@router.get("/account/security")
async def security_page(
    request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    subject = signed_in(subject, SECURITY)
    listed = await enrolment.list_factors(session, subject)
    tenant = await tenants.require_tenant(session, subject.tenant_id)
    rules = rules_of(tenant)
    context = {
        "section": "security",
        "factors": [f for f in listed.factors if f.confirmed],
        "backup_codes_remaining": listed.backup_codes_remaining,
        "allowed": [] if rules.mode == "off" else list(rules.allowed_factors),
        "backup_codes_allowed": rules.allow_backup_codes and rules.mode != "off",
        "verified": request.query_params.get("verified"),
        "removed": request.query_params.get("removed"),
        "cancelled": request.query_params.get("cancelled"),
    }
    return page(request, "account/security.html", context)


async def _start(
    request: Request,
    subject: AuthSubject,
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    factor_type: str,
    name: str,
) -> Response:
    try:
        actor = await enrolment.resolve_actor(state, session, subject=subject, challenge_token=None)
        out = await enrolment.start_setup(
            state, session, meta, actor, factor_type=factor_type, name=name.strip() or None,
            phone=None,
        )  # fmt: skip
    except BigfootError as exc:
        stepped = await _guarded(request, state, session, meta, exc)
        if stepped is not None:
            return stepped
        await session.rollback()
        failed = {"section": "security", "error": describe(exc)}
        return page(request, "account/problem.html", failed, exc.status_code)
    if factor_type == "totp" and out.totp is not None:
        context = {"section": "security", **totp_key(out)}
        return page(request, "account/totp.html", context)
    options = out.webauthn_options
    return page(
        request,
        "account/passkey.html",
        {"section": "security", "factor_id": out.factor.id, "options": options},
    )


@router.post("/account/mfa/totp")
async def start_totp(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    name: Name = "",
) -> Response:
    subject = signed_in(subject, SECURITY)
    return await _start(request, subject, state, session, meta, "totp", name)


@router.post("/account/mfa/passkey")
async def start_passkey(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    name: Name = "",
) -> Response:
    subject = signed_in(subject, SECURITY)
    return await _start(request, subject, state, session, meta, "webauthn", name)


async def _confirm(
    request: Request,
    subject: AuthSubject,
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    factor_id: uuid.UUID,
    *,
    code: str | None = None,
    credential: dict[str, Any] | None = None,
) -> ConfirmOut | Response:
    try:
        actor = await enrolment.resolve_actor(state, session, subject=subject, challenge_token=None)
        return await enrolment.confirm_setup(
            state, session, meta, actor, factor_id=factor_id, code=code, credential=credential
        )
    except BigfootError as exc:
        await session.rollback()
        template = "account/totp.html" if credential is None else "account/problem.html"
        context = {"section": "security", "factor_id": factor_id, "error": describe(exc)}
        if credential is None:  # the same key again, to try another code
            context.update(await pending_key(state, session, subject, None, factor_id))
        return page(request, template, context, exc.status_code)


def _enrolled(request: Request, out: ConfirmOut) -> Response:
    """Shown once: the backup codes exist nowhere else in readable form."""
    context = {"section": "security", "factor": out.factor, "codes": out.backup_codes}
    return page(request, "account/enrolled.html", context)


@router.post("/account/mfa/totp/confirm")
async def confirm_totp(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    factor_id: Annotated[uuid.UUID, Form()],
    code: Code,
) -> Response:
    subject = signed_in(subject, SECURITY)
    code = code.strip().replace(" ", "")
    out = await _confirm(request, subject, state, session, meta, factor_id, code=code)
    return out if isinstance(out, Response) else _enrolled(request, out)


@router.post("/account/mfa/passkey/confirm")
async def confirm_passkey(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    factor_id: Annotated[uuid.UUID, Form()],
    credential: Credential,
) -> Response:
    subject = signed_in(subject, SECURITY)
    answer = _credential(credential)
    out = await _confirm(request, subject, state, session, meta, factor_id, credential=answer)
    return out if isinstance(out, Response) else _enrolled(request, out)


@router.post("/account/mfa/backup-codes")
async def new_backup_codes(
    request: Request, subject: BrowserSubject, state: State, session: DbSession, meta: Meta
) -> Response:
    """Ten new codes replacing the old ones (`POST /api/auth/mfa/backup-codes`, step-up)."""
    subject = signed_in(subject, SECURITY)
    try:
        await policy.ensure_recent_mfa(state, session, meta, subject)
        fresh = await backup_codes.regenerate_backup_codes(state, session, meta, subject)
    except BigfootError as exc:
        stepped = await _guarded(request, state, session, meta, exc)
        if stepped is not None:
            return stepped
        await session.rollback()
        context = {"section": "security", "error": describe(exc)}
        return page(request, "account/problem.html", context, exc.status_code)
    return page(request, "account/enrolled.html", {"section": "security", "codes": fresh})


@router.post("/account/mfa/factors/{factor_id}/remove")
async def remove_factor(
    factor_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    """`DELETE /api/auth/mfa/factors/{id}`, step-up included; another's factor is not found."""
    subject = signed_in(subject, SECURITY)
    try:
        await policy.ensure_recent_mfa(state, session, meta, subject)
        await enrolment.delete_factor(state, session, meta, subject, factor_id)
    except BigfootError as exc:
        stepped = await _guarded(request, state, session, meta, exc)
        if stepped is not None:
            return stepped
        if exc.status_code == 404:
            raise
        await session.rollback()
        context = {"section": "security", "error": describe(exc)}
        return page(request, "account/problem.html", context, exc.status_code)
    return redirect(request, f"{SECURITY}?removed=1")


# ---------------------------------------------------------------- cancelling, starting again


@router.post("/account/mfa/cancel")
async def cancel_setup(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    factor_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """Back to the account's factors, the set-up forgotten (`mfa.enrolment.abandon_setup`: a
    factor not yet confirmed only, so nothing half set up stays behind)."""
    subject = signed_in(subject, SECURITY)
    if factor_id is not None:
        actor = await enrolment.resolve_actor(state, session, subject=subject, challenge_token=None)
        await enrolment.abandon_setup(state, session, meta, actor, factor_id)
    return redirect(request, f"{SECURITY}?cancelled=1")


@router.post("/account/mfa/totp/restart")
async def restart_totp(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    factor_id: Annotated[uuid.UUID, Form()],
) -> Response:
    """Once the wrong codes ran out (or the set-up expired): the old set-up forgotten, a new one
    with a new key, under the same name."""
    subject = signed_in(subject, SECURITY)
    actor = await enrolment.resolve_actor(state, session, subject=subject, challenge_token=None)
    old = await enrolment.abandon_setup(state, session, meta, actor, factor_id)
    name = old.name if old is not None and old.type == "totp" else ""
    return await _start(request, subject, state, session, meta, "totp", name)
