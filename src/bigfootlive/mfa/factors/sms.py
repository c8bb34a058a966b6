"""Codes by text message, to a phone number given at setup."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.errors import BadRequest
from bigfootlive.mfa.factors.sent_codes import SentCodeFactor
from bigfootlive.mfa.schemas import SetupOut
from bigfootlive.mfa.sms.log import mask_phone
from bigfootlive.models import MfaFactor, User

if TYPE_CHECKING:
    from bigfootlive.mfa.ports import MfaState


class SmsFactor(SentCodeFactor):
    type = "sms"
    default_name = "Text messages"

    def mask(self, destination: str) -> str:
        return mask_phone(destination)

    async def deliver(
        self, state: MfaState, destination: str, code: str, minutes: int, why: str
    ) -> None:
        await state.sms.send(
            destination, f"BigfootLive code: {code} (expires in {minutes} min). Do not share it."
        )

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
        if not phone:
            raise BadRequest("A phone number (E.164) is needed for SMS", code="phone_required")
        factor.destination = phone
