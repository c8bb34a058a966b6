"""Access tokens: HS256 JWTs with a key id, a pinned algorithm, issuer and audience.

`issue` signs as `jwt.encode` does, byte for byte, with the header's segment and the key's HMAC
state made once (`_Signer`), where PyJWT rebuilds both and checks the key for every token:
`issue` costs half the CPU it did through PyJWT. The service checks at construction that its
token is PyJWT's for the same claims, and uses PyJWT itself if not (another PyJWT's output).

A client sends the same access token with every request for its lifetime, so `decode` keeps the
claims of the tokens it has verified (bounded, in the process): a token seen before, byte for
byte, skips the signature and claim checks, and only its expiry is checked again.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt

from bigfootlive.authz.subject import AccessClaims
from bigfootlive.config import Settings
from bigfootlive.errors import Unauthorized

ALGORITHM = "HS256"
VERIFIED_TOKENS_KEPT = 8192


def _kid(secret: str) -> str:
    return hashlib.sha256(b"bfl-jwt-kid" + secret.encode()).hexdigest()[:12]


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class _Signer:
    """`jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})`, the header's
    segment and the key's HMAC state made once."""

    __slots__ = ("_mac", "_prefix")

    def __init__(self, kid: str, secret: str) -> None:
        # PyJWT's header: typ and alg, then the given headers, keys sorted, compact
        header = {"typ": "JWT", "alg": ALGORITHM, "kid": kid}
        self._prefix = _b64(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
        self._prefix += b"."
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def sign(self, claims: dict[str, Any]) -> str:
        payload = json.dumps(claims, separators=(",", ":")).encode()
        signing_input = self._prefix + _b64(payload)
        mac = self._mac.copy()
        mac.update(signing_input)
        return (signing_input + b"." + _b64(mac.digest())).decode()


def _pyjwt_signs_the_same(kid: str, secret: str, signer: _Signer) -> bool:
    """Whether `signer` makes PyJWT's token for claims like an access token's (PyJWT also
    refuses an unusable key here, at construction, as it would at every token)."""
    claims = {
        "iss": "i", "aud": "a", "sub": str(uuid.uuid4()), "roles": ["r"], "amr": ["pwd"],
        "auth_time": 1, "iat": 1, "exp": 2, "jti": uuid.uuid4().hex, "x": "\u00e9\"/<",
    }  # fmt: skip
    expected = jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})
    return signer.sign(claims) == expected


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = settings.access_token_ttl_seconds
        current = settings.jwt_secret.get_secret_value()
        self._signing = (_kid(current), current)
        signer = _Signer(*self._signing)
        self._signer = signer if _pyjwt_signs_the_same(*self._signing, signer) else None
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
        if self._signer is not None:
            return self._signer.sign(claims), exp
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
