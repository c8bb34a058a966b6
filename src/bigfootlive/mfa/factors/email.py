"""Codes by email, to the account's own address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.mfa.factors.sent_codes import SentCodeFactor
from bigfootlive.mfa.schemas import SetupOut
from bigfootlive.models import MfaFactor, User

if TYPE_CHECKING:
    from bigfootlive.mfa.ports import MfaState


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'*' * max(1, len(local) - 1)}@{domain}"


class EmailFactor(SentCodeFactor):
    type = "email"
    default_name = "Email codes"

    def mask(self, destination: str) -> str:
        return mask_email(destination)

    async def deliver(
        self, state: MfaState, destination: str, code: str, minutes: int, why: str
    ) -> None:
        await state.mailer.send(
            destination,
            f"Your BigfootLive verification code: {code}",
            f"Your verification code to {why} is:\n\n    {code}\n\n"
            f"It expires in {minutes} minutes. If you did not ask for it, someone may know "
            "your password: change it now.",
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
        factor.destination = user.email
