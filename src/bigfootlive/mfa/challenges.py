"""Short-lived MFA challenges, kept server-side in the cache (Redis or in-process).

The client holds only an opaque token; the cache holds, under the token's hash, who is signing
in, how far they got (the first factor's amr) and what the challenge is for. Everything
attached to a challenge (sent codes, WebAuthn challenges, failure counters) expires with it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Literal

from bigfootlive.authz.scoping import act_for_tenant
from bigfootlive.kit import jsonparse
from bigfootlive.kit.crypto import hash_token, random_token
from bigfootlive.state import Infrastructure

Purpose = Literal["login", "enroll", "step_up"]


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    purpose: Purpose
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    amr: list[str] = field(default_factory=list)
    session_id: uuid.UUID | None = None
    expires_at: float = 0.0

    def key(self, suffix: str = "") -> str:
        return f"mfa:ch:{self.id}" + (f":{suffix}" if suffix else "")

    @property
    def ttl(self) -> float:
        return max(1.0, self.expires_at - time.time())

    def to_json(self) -> bytes:
        data = asdict(self)
        data["tenant_id"] = str(self.tenant_id)
        data["user_id"] = str(self.user_id)
        data["session_id"] = str(self.session_id) if self.session_id else None
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Challenge:
        data = jsonparse.loads(raw)
        return cls(
            id=data["id"],
            purpose=data["purpose"],
            tenant_id=uuid.UUID(data["tenant_id"]),
            user_id=uuid.UUID(data["user_id"]),
            amr=list(data["amr"]),
            session_id=uuid.UUID(data["session_id"]) if data["session_id"] else None,
            expires_at=float(data["expires_at"]),
        )


async def issue(
    state: Infrastructure,
    *,
    purpose: Purpose,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    amr: list[str],
    session_id: uuid.UUID | None = None,
) -> tuple[str, Challenge]:
    token = random_token()
    ttl = state.settings.mfa_challenge_ttl_seconds
    challenge = Challenge(
        id=hash_token(token),
        purpose=purpose,
        tenant_id=tenant_id,
        user_id=user_id,
        amr=amr,
        session_id=session_id,
        expires_at=time.time() + ttl,
    )
    await state.cache.set(challenge.key(), challenge.to_json(), ttl=ttl)
    return token, challenge


async def load(state: Infrastructure, token: str) -> Challenge | None:
    raw = await state.cache.get(f"mfa:ch:{hash_token(token)}")
    if raw is None:
        return None
    challenge = Challenge.from_json(raw)
    if challenge.expires_at <= time.time():
        return None
    act_for_tenant(challenge.tenant_id)  # the challenge (ours, in the cache) names its tenant
    return challenge


async def count_failure(state: Infrastructure, challenge: Challenge) -> int:
    return await state.cache.incr(challenge.key("fails"), ttl=challenge.ttl)


async def consume(state: Infrastructure, challenge: Challenge) -> bool:
    """Use the challenge up; False when a concurrent request already did."""
    first = await state.cache.add(challenge.key("used"), b"1", ttl=challenge.ttl)
    await state.cache.delete(challenge.key(), challenge.key("code"), challenge.key("webauthn"))
    return first


async def discard(state: Infrastructure, challenge: Challenge) -> None:
    await state.cache.delete(challenge.key(), challenge.key("code"), challenge.key("webauthn"))
