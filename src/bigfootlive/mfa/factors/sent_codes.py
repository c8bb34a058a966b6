"""Codes sent by email or SMS: one 6-digit code at a time, stored as a digest, used once."""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.errors import ServiceUnavailable
from bigfootlive.kit import jsonparse
from bigfootlive.kit.crypto import constant_time_equals
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import codes
from bigfootlive.mfa.base import Answer, chosen_factors
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.schemas import ChallengePrepareOut, SetupOut
from bigfootlive.models import MfaFactor, User
from bigfootlive.tenants.schemas import MfaPolicy

if TYPE_CHECKING:
    from bigfootlive.mfa.ports import MfaState

log = structlog.get_logger(__name__)


async def _check_sent_code(
    state: MfaState, key: str, code: str | None, factor_id: uuid.UUID | None
) -> uuid.UUID | None:
    """The factor the code was sent for when `code` matches (the code is then used up)."""
    raw = await state.cache.get(key)
    if raw is None or not code:
        return None
    record = jsonparse.loads(raw)
    if factor_id is not None and record["factor_id"] != str(factor_id):
        return None
    if not constant_time_equals(record["digest"], codes.code_digest(key, code)):
        return None
    await state.cache.delete(key)
    return uuid.UUID(record["factor_id"])


class SentCodeFactor(ABC):
    """A factor proved by a code sent to its destination; subclasses say how it is sent."""

    type: str
    default_name: str

    @abstractmethod
    def mask(self, destination: str) -> str: ...

    @abstractmethod
    async def deliver(
        self, state: MfaState, destination: str, code: str, minutes: int, why: str
    ) -> None: ...

    def shown_destination(self, factor: MfaFactor) -> str | None:
        return self.mask(factor.destination) if factor.destination else None

    async def _send_code(
        self, state: MfaState, *, key: str, factor: MfaFactor, user: User, why: str
    ) -> str:
        """Send a fresh 6-digit code to the factor's destination; returns the masked destination."""
        await state.limiter.check(state.settings.mfa_send_rate_limit, "mfa-send", str(user.id))
        code = codes.one_time_code()
        ttl = state.settings.mfa_code_ttl_seconds
        record = {"factor_id": str(factor.id), "digest": codes.code_digest(key, code)}
        await state.cache.set(key, json.dumps(record).encode(), ttl=ttl)
        minutes = max(1, ttl // 60)
        destination = factor.destination or ""
        try:
            await self.deliver(state, destination, code, minutes, why)
            return self.mask(destination)
        except Exception as exc:  # SMTP, SmsDeliveryError, network: all mean 'not delivered'
            await state.cache.delete(key)
            log.warning("mfa_code_delivery_failed", factor_type=factor.type, error=str(exc)[:200])
            raise ServiceUnavailable(
                "The code could not be delivered; try again or use another factor",
                code="code_delivery_failed",
            ) from exc

    async def after_setup(
        self, state: MfaState, user: User, factor: MfaFactor, out: SetupOut
    ) -> None:
        out.code_sent_to = await self._send_code(
            state,
            key=f"mfa:enrol:{factor.id}:code",
            factor=factor,
            user=user,
            why="confirm this sign-in method",
        )
        out.expires_in = state.settings.mfa_code_ttl_seconds

    async def confirm(
        self,
        state: MfaState,
        factor: MfaFactor,
        *,
        code: str | None,
        credential: dict[str, Any] | None,
    ) -> bool:
        key = f"mfa:enrol:{factor.id}:code"
        return await _check_sent_code(state, key, code, factor.id) is not None

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
        out.code_sent_to = await self._send_code(
            state, key=challenge.key("code"), factor=factor, user=user, why="sign in"
        )
        out.expires_in = min(int(challenge.ttl), state.settings.mfa_code_ttl_seconds)
        await AuditLog(session, meta, user.id).record(
            AuditAction.AUTH_MFA_CODE_SENT,
            tenant_id=user.tenant_id,
            target_type="mfa_factor",
            target_id=factor.id,
            details={"type": factor.type, "purpose": challenge.purpose},
        )

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
        chosen = chosen_factors(factors, self.type, answer.factor_id)
        proved = await _check_sent_code(state, challenge.key("code"), answer.code, answer.factor_id)
        return next((f for f in chosen if f.id == proved), False)

    async def on_verified(
        self, state: MfaState, session: AsyncSession, meta: RequestMeta, user: User
    ) -> None:
        return None
