"""Step-up for sensitive actions, as a route dependency.

    @router.delete("/things/{id}")
    async def delete_thing(subject: ThingAdmin, _: RecentMfa, ...): ...

or with another freshness: `Annotated[AuthSubject, Depends(require_recent_mfa(300))]`.
Declare it after the permission dependency so a caller without the role gets 403, not a
step-up challenge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from bigfootlive.authz.deps import CurrentSubject
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import Meta, ReadSession, State
from bigfootlive.mfa.policy import ensure_recent_mfa


def require_recent_mfa(
    max_age: int | None = None,
) -> Callable[..., Awaitable[AuthSubject]]:
    """401 `step_up_required` (with a challenge) unless the caller verified recently enough.

    `max_age` in seconds; default MFA_STEP_UP_MAX_AGE_SECONDS.
    """

    async def dependency(
        subject: CurrentSubject, state: State, session: ReadSession, meta: Meta
    ) -> AuthSubject:
        await ensure_recent_mfa(state, session, meta, subject, max_age=max_age)
        return subject

    return dependency


RecentMfa = Annotated[AuthSubject, Depends(require_recent_mfa())]
