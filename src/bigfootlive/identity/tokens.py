"""Access tokens: HS256 JWTs with a key id, a pinned algorithm, issuer and audience.

A client sends the same access token with every request for its lifetime, so `decode` keeps the
claims of the tokens it has verified (bounded, in the process): a token seen before, byte for
byte, skips the signature and claim checks, and only its expiry is checked again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid

import jwt

from bigfootlive.authz.subject import AccessClaims
from bigfootlive.config import Settings
from bigfootlive.errors import Unauthorized

ALGORITHM = "HS256"
VERIFIED_TOKENS_KEPT = 8192


def _kid(secret: str) -> str:
    return hashlib.sha256(b"bfl-jwt-kid" + secret.encode()).hexdigest()[:12]


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = settings.access_token_ttl_seconds
        current = settings.jwt_secret.get_secret_value()
        self._signing = (_kid(current), current)
        self._keys = {_kid(current): current}
        for old in settings.jwt_previous_secrets:
            secret = old.get_secret_value()
            self._keys[_kid(secret)] = secret
        self._verified: dict[str, AccessClaims] = {}

    def issue(
        self,
        *,
        user_id: uuid.UUID,
        tenant_id: uuid.UUID,
        session_id: uuid.UUID,
        roles: list[str],
        amr: list[str],
        auth_time: dt.datetime,
        now: dt.datetime | None = None,
    ) -> tuple[str, int]:
        now = now or dt.datetime.now(dt.UTC)
        exp = int(now.timestamp()) + self.ttl
        kid, secret = self._signing
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "tid": str(tenant_id),
            "sid": str(session_id),
            "roles": roles,
            "amr": amr,
            "auth_time": int(auth_time.timestamp()),
            "iat": int(now.timestamp()),
            "exp": exp,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid}), exp

    def decode(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = claims
        # As PyJWT: expired once `exp` is reached (no leeway).
        elif claims.expires_at <= time.time():
            self._verified.pop(token, None)
            raise Unauthorized("The access token has expired", code="token_expired")
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            secret = self._keys.get(str(header.get("kid")))
            if secret is None or header.get("alg") != ALGORITHM:
                raise Unauthorized("The access token is not valid", code="invalid_token")
            payload = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "tid", "sid", "iss", "aud"]},
            )
            return AccessClaims(
                user_id=uuid.UUID(payload["sub"]),
                tenant_id=uuid.UUID(payload["tid"]),
                session_id=uuid.UUID(payload["sid"]),
                roles=tuple(payload.get("roles", ())),
                amr=tuple(payload.get("amr", ())),
                auth_time=int(payload.get("auth_time", payload["iat"])),
                expires_at=int(payload["exp"]),
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired", code="token_expired") from exc
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as exc:
            raise Unauthorized("The access token is not valid", code="invalid_token") from exc
