from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from bigfootlive.authz.deps import CurrentSubject, OptionalSubject, require
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.identity.schemas import MfaChallenge
from bigfootlive.mfa import enrolment, recovery, verification
from bigfootlive.mfa.deps import RecentMfa
from bigfootlive.mfa.factors import backup_codes
from bigfootlive.mfa.schemas import (
    BackupCodesOut,
    ChallengePrepareIn,
    ChallengePrepareOut,
    ConfirmIn,
    ConfirmOut,
    FactorList,
    SetupIn,
    SetupOut,
    VerifyIn,
    VerifyOut,
)
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/auth/mfa", tags=["mfa"], route_class=JsonRoute)
tenant_router = APIRouter(prefix="/api/tenant/users", tags=["tenant"], route_class=JsonRoute)

MfaResetter = Annotated[AuthSubject, Depends(require(Permission.MFA_RESET))]


@router.post("/setup", status_code=status.HTTP_201_CREATED)
async def setup(
    body: SetupIn, subject: OptionalSubject, state: State, session: DbSession, meta: Meta
) -> SetupOut:
    """Start enrolling a factor (bearer token, or the enrolment challenge from sign-in)."""
    actor = await enrolment.resolve_actor(
        state, session, subject=subject, challenge_token=body.challenge_token
    )
    return await enrolment.start_setup(
        state, session, meta, actor, factor_type=body.type, name=body.name, phone=body.phone
    )


@router.post("/setup/confirm")
async def confirm_setup(
    body: ConfirmIn, subject: OptionalSubject, state: State, session: DbSession, meta: Meta
) -> ConfirmOut:
    """Prove the new factor works; completes an enrolment sign-in when given its challenge."""
    actor = await enrolment.resolve_actor(
        state, session, subject=subject, challenge_token=body.challenge_token
    )
    return await enrolment.confirm_setup(
        state,
        session,
        meta,
        actor,
        factor_id=body.factor_id,
        code=body.code,
        credential=body.credential,
    )


@router.get("/factors")
async def list_factors(subject: CurrentSubject, session: ReadSession) -> FactorList:
    return await enrolment.list_factors(session, subject)


@router.delete("/factors/{factor_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_factor(
    factor_id: uuid.UUID, subject: RecentMfa, state: State, session: DbSession, meta: Meta
) -> Response:
    await enrolment.delete_factor(state, session, meta, subject, factor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/backup-codes")
async def regenerate_backup_codes(
    subject: RecentMfa, state: State, session: DbSession, meta: Meta
) -> BackupCodesOut:
    """Replace all backup codes with 10 new ones (shown once)."""
    return BackupCodesOut(
        backup_codes=await backup_codes.regenerate_backup_codes(state, session, meta, subject)
    )


@router.post("/challenge")
async def prepare_challenge(
    body: ChallengePrepareIn, state: State, session: DbSession, meta: Meta
) -> ChallengePrepareOut:
    """Within a challenge: send the email/SMS code, or get the passkey request options."""
    return await verification.prepare_challenge(
        state, session, meta, token=body.challenge_token, factor_id=body.factor_id
    )


@router.post("/verify")
async def verify(body: VerifyIn, state: State, session: DbSession, meta: Meta) -> VerifyOut:
    """Answer a challenge: sign-in gets a token pair, step-up a fresh access token."""
    return await verification.verify(
        state,
        session,
        meta,
        token=body.challenge_token,
        method=body.method,
        factor_id=body.factor_id,
        code=body.code,
        credential=body.credential,
        password=body.password,
    )


@router.post("/step-up")
async def start_step_up(
    subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> MfaChallenge:
    """Ask for a step-up challenge ahead of a sensitive action."""
    return await verification.start_step_up(state, session, meta, subject)


@tenant_router.post("/{user_id}/mfa/reset")
async def reset_user_mfa(
    user_id: uuid.UUID,
    subject: MfaResetter,
    _: RecentMfa,
    state: State,
    session: DbSession,
    meta: Meta,
) -> dict[str, int]:
    """Recovery: remove every factor of a member (audited; the member is emailed)."""
    removed = await recovery.admin_reset(state, session, meta, subject, user_id)
    return {"factors_removed": removed}
