"""What the MFA modules share: the Method and Factor protocols, the errors, the account notice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.db import after_commit
from bigfootlive.errors import BadRequest, NotFound, TooManyRequests, Unauthorized
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.schemas import ChallengePrepareOut, SetupOut
from bigfootlive.models import MfaFactor, Tenant, User
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import MfaPolicy

if TYPE_CHECKING:
    from bigfootlive.mfa.ports import MfaState


class InvalidChallenge(Unauthorized):
    code = "invalid_mfa_challenge"
    message = "The MFA challenge is invalid, used or expired; sign in again"


class InvalidCode(Unauthorized):
    code = "invalid_mfa_code"
    message = "The verification failed: wrong or expired code"


class ChallengeLocked(TooManyRequests):
    code = "mfa_challenge_locked"
    message = "Too many wrong attempts; this challenge is locked, sign in again"


class MfaLocked(TooManyRequests):
    code = "mfa_locked"
    message = "Too many wrong second-factor attempts; try again later"


class FactorNotFound(NotFound):
    code = "factor_not_found"
    message = "No such factor"


def rules_of(tenant: Tenant) -> MfaPolicy:
    return tenants.settings_of(tenant).mfa


def notify(state: MfaState, session: AsyncSession, user: User, subject: str, body: str) -> None:
    async def send() -> None:
        await state.mailer.send(user.email, subject, body)

    after_commit(session, send)


def chosen_factors(
    factors: Sequence[MfaFactor], method: str, factor_id: uuid.UUID | None
) -> list[MfaFactor]:
    """The user's factors of type `method` (only `factor_id` when given); at least one."""
    chosen = [f for f in factors if f.type == method and (factor_id is None or f.id == factor_id)]
    if not chosen:
        raise BadRequest("No such factor for this account", code="factor_not_available")
    return chosen


@dataclass(frozen=True)
class Answer:
    """What the user sent to answer a challenge; each method reads the part it checks."""

    factor_id: uuid.UUID | None = None
    code: str | None = None
    credential: dict[str, Any] | None = None
    password: str | None = None


class Method(Protocol):
    """A way to answer an MFA challenge: a factor, a backup code, or (for step-up only) the
    password. `factors.registry.METHODS` names them, so verification never branches on one."""

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
        """The factor proved (True for a backup code or password), False for a wrong answer."""
        ...

    async def on_verified(
        self, state: MfaState, session: AsyncSession, meta: RequestMeta, user: User
    ) -> None:
        """After a challenge was answered with this method."""
        ...


class Factor(Method, Protocol):
    """A kind of second factor a user enrols: an MfaFactor row of this type."""

    default_name: str

    def shown_destination(self, factor: MfaFactor) -> str | None:
        """Where the factor's codes go, masked for display (None: nowhere)."""
        ...

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
        """Fill a new, unsaved factor and the setup answer (secret, options, destination)."""
        ...

    async def after_setup(
        self, state: MfaState, user: User, factor: MfaFactor, out: SetupOut
    ) -> None:
        """Once the new factor is saved (send its first code)."""
        ...

    async def confirm(
        self,
        state: MfaState,
        factor: MfaFactor,
        *,
        code: str | None,
        credential: dict[str, Any] | None,
    ) -> bool:
        """Whether the answer proves the new factor works (the factor is updated to match)."""
        ...

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
        """Before a challenge is answered with `factor`: send a code, or the request options."""
        ...
