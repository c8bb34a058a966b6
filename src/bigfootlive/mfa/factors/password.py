"""The password, as a stand-in for a step-up only, and only for an account with no factor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.errors import BadRequest
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa.base import Answer
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.models import MfaFactor, User
from bigfootlive.tenants.schemas import MfaPolicy

if TYPE_CHECKING:
    from bigfootlive.mfa.ports import MfaState


class PasswordMethod:
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
        if challenge.purpose != "step_up" or factors:
            raise BadRequest(
                "A password cannot stand in for your second factor", code="method_not_allowed"
            )
        ok, _ = await state.passwords.verify(user.password_hash, answer.password or "")
        return ok

    async def on_verified(
        self, state: MfaState, session: AsyncSession, meta: RequestMeta, user: User
    ) -> None:
        return None
