"""Passkeys and security keys (WebAuthn): a fresh challenge per ceremony, sign counts checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.db import utcnow
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import passkeys
from bigfootlive.mfa import repository as repo
from bigfootlive.mfa.base import Answer, chosen_factors
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.schemas import ChallengePrepareOut, SetupOut
from bigfootlive.models import MfaFactor, User
from bigfootlive.tenants.schemas import MfaPolicy

if TYPE_CHECKING:
    from bigfootlive.mfa.ports import MfaState

log = structlog.get_logger(__name__)


class PasskeyFactor:
    default_name = "Passkey"

    def shown_destination(self, factor: MfaFactor) -> str | None:
        return None

    async def setup(
        self,
        state: MfaState,
        session: AsyncSession,
        user: User,
        factor: MfaFactor,
        out: SetupOut,
        *,
        phone: str | None,
    ) -> None:
        ttl = state.settings.mfa_challenge_ttl_seconds
        existing = [
            f.credential_id
            for f in await repo.user_factors(session, user.tenant_id, user.id, types=["webauthn"])
            if f.credential_id
        ]
        options, challenge = passkeys.registration_options(
            state.settings,
            user_handle=user.id.bytes,
            user_name=user.email,
            display_name=user.display_name,
            exclude=existing,
        )
        await state.cache.set(f"mfa:enrol:{factor.id}:webauthn", challenge, ttl=ttl)
        out.webauthn_options = options

    async def after_setup(
        self, state: MfaState, user: User, factor: MfaFactor, out: SetupOut
    ) -> None:
        return None

    async def confirm(
        self,
        state: MfaState,
        factor: MfaFactor,
        *,
        code: str | None,
        credential: dict[str, Any] | None,
    ) -> bool:
        key = f"mfa:enrol:{factor.id}:webauthn"
        challenge = await state.cache.get(key)
        if challenge is None or credential is None:
            return False
        try:
            verified = passkeys.verify_attestation(
                state.settings, credential=credential, challenge=challenge
            )
        except passkeys.PasskeyError as exc:
            log.info("webauthn_registration_refused", reason=str(exc)[:200])
            return False
        await state.cache.delete(key)
        factor.credential_id = verified.credential_id
        factor.public_key = verified.public_key
        factor.sign_count = verified.sign_count
        return True

    async def prepare(
        self,
        state: MfaState,
        session: AsyncSession,
        meta: RequestMeta,
        challenge: Challenge,
        user: User,
        factor: MfaFactor,
        factors: Sequence[MfaFactor],
        out: ChallengePrepareOut,
    ) -> None:
        allow = [f.credential_id for f in factors if f.type == "webauthn" and f.credential_id]
        options, raw = passkeys.authentication_options(state.settings, allow=allow)
        await state.cache.set(challenge.key("webauthn"), raw, ttl=challenge.ttl)
        out.webauthn_options = options

    async def prove(
        self,
        state: MfaState,
        session: AsyncSession,
        challenge: Challenge,
        user: User,
        rules: MfaPolicy,
        factors: Sequence[MfaFactor],
        answer: Answer,
    ) -> MfaFactor | bool:
        chosen = chosen_factors(factors, "webauthn", answer.factor_id)
        raw_challenge = await state.cache.get(challenge.key("webauthn"))
        credential_id = passkeys.credential_id_of(answer.credential or {})
        if raw_challenge is None or credential_id is None:
            return False
        passkey = next((f for f in chosen if f.credential_id == credential_id), None)
        if passkey is None or passkey.public_key is None:
            return False
        try:
            new_count = passkeys.verify_assertion(
                state.settings,
                credential=answer.credential or {},
                challenge=raw_challenge,
                public_key=passkey.public_key,
                sign_count=passkey.sign_count,
            )
        except passkeys.PasskeyError as exc:
            log.info("webauthn_assertion_refused", reason=str(exc)[:200])
            return False
        await state.cache.delete(challenge.key("webauthn"))
        moved = await repo.advance_sign_count(
            session, passkey.id, passkey.sign_count, new_count, utcnow()
        )
        if not moved:
            return False
        return passkey

    async def on_verified(
        self, state: MfaState, session: AsyncSession, meta: RequestMeta, user: User
    ) -> None:
        return None
