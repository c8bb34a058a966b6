"""Authenticator apps (TOTP): the secret is sealed per factor; a used time step is never reused."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import repository as repo
from bigfootlive.mfa import totp
from bigfootlive.mfa.base import Answer, chosen_factors
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.schemas import ChallengePrepareOut, SetupOut, TotpSetup
from bigfootlive.models import MfaFactor, User
from bigfootlive.tenants.schemas import MfaPolicy

if TYPE_CHECKING:
    from bigfootlive.mfa.ports import MfaState


def _totp_context(factor_id: uuid.UUID) -> str:
    return f"mfa-totp:{factor_id}"


def _key(state: MfaState, user: User, secret: str) -> TotpSetup:
    uri = totp.provisioning_uri(secret, account=user.email, issuer=state.settings.mfa_issuer)
    return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


class TotpFactor:
    default_name = "Authenticator app"

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
        secret = totp.new_secret()
        factor.secret_ciphertext = state.secrets.encrypt(secret, context=_totp_context(factor.id))
        out.totp = _key(state, user, secret)

    def pending_key(self, state: MfaState, user: User, factor: MfaFactor) -> TotpSetup | None:
        """The key of a set-up not yet confirmed, to show again (after a wrong code); its secret
        stays sealed in the factor's row, and is opened only for this answer."""
        if factor.confirmed_at is not None or factor.secret_ciphertext is None:
            return None
        secret = state.secrets.decrypt(factor.secret_ciphertext, context=_totp_context(factor.id))
        return _key(state, user, secret)

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
        if not code or factor.secret_ciphertext is None:
            return False
        secret = state.secrets.decrypt(factor.secret_ciphertext, context=_totp_context(factor.id))
        step = totp.matching_step(secret, code)
        if step is None:
            return False
        factor.totp_last_step = step
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
        return None  # the app shows the code already

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
        chosen = chosen_factors(factors, "totp", answer.factor_id)
        for factor in chosen:
            if answer.code and factor.secret_ciphertext:
                secret = state.secrets.decrypt(
                    factor.secret_ciphertext, context=_totp_context(factor.id)
                )
                step = totp.matching_step(secret, answer.code)
                # A step at or before the last accepted one is a replay: refused like a wrong code.
                # (Checked here, then again atomically by the update, for concurrent requests.)
                if step is None or (
                    factor.totp_last_step is not None and step <= factor.totp_last_step
                ):
                    continue
                if await repo.advance_totp_step(session, factor.id, step):
                    return factor
        return False

    async def on_verified(
        self, state: MfaState, session: AsyncSession, meta: RequestMeta, user: User
    ) -> None:
        return None
