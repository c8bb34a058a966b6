"""Access tokens: only ours, unexpired, for our audience, with the pinned algorithm, pass."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import jwt
import pytest

from bigfootlive.config import Settings
from bigfootlive.errors import Unauthorized
from bigfootlive.identity import tokens
from bigfootlive.identity.tokens import TokenService
from tests.fixtures import polling

SECRET = "test-secret-" + "x" * 60  # the same secret the app fixture uses


def _service(**overrides: object) -> TokenService:
    return TokenService(Settings(jwt_secret=SECRET, **overrides))  # type: ignore[arg-type]


def _issue(service: TokenService, **kwargs: object) -> str:
    token, _ = service.issue(
        user_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        roles=["viewer"],
        amr=["pwd"],
        auth_time=dt.datetime.now(dt.UTC),
        **kwargs,  # type: ignore[arg-type]
    )
    return token


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_issued_token_round_trips_with_claims() -> None:
    service = _service()
    token = _issue(service)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert header["kid"]
    claims = service.decode(token)
    assert claims.roles == ("viewer",)
    assert claims.amr == ("pwd",)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert {"sub", "tid", "sid", "roles", "amr", "iss", "aud", "exp", "iat"} <= payload.keys()


def test_issued_tokens_are_the_bytes_pyjwt_makes(monkeypatch) -> None:
    """`issue` signs without PyJWT (its header segment and key state made once): the token is
    `jwt.encode`'s for the same claims, byte for byte; a signer that would differ is not used."""
    service = _service()
    for roles, amr in ((["viewer"], ["pwd"]), (["admin", "platform_admin"], ["pwd", "mfa"])):
        token, _ = service.issue(
            user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), session_id=uuid.uuid4(),
            roles=roles, amr=amr, auth_time=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        claims = jwt.decode(token, options={"verify_signature": False})  # in the token's order
        kid = jwt.get_unverified_header(token)["kid"]
        assert token == jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": kid})
        assert service.decode(token).roles == tuple(roles)
    assert service._signer is not None

    monkeypatch.setattr(tokens._Signer, "sign", lambda self, claims: "not-pyjwts")
    fallback = _service()
    assert fallback._signer is None
    assert fallback.decode(_issue(fallback)).amr == ("pwd",)


def test_token_signed_with_another_key_is_refused() -> None:
    forged = _issue(TokenService(Settings(jwt_secret="o" * 48)))
    with pytest.raises(Unauthorized) as info:
        _service().decode(forged)
    assert info.value.code == "invalid_token"


def test_alg_none_token_is_refused() -> None:
    service = _service()
    real = jwt.decode(_issue(service), options={"verify_signature": False})
    kid = jwt.get_unverified_header(_issue(service))["kid"]
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(real)}."
    with pytest.raises(Unauthorized):
        service.decode(unsigned)


def test_token_with_another_algorithm_and_the_same_secret_is_refused() -> None:
    service = _service()
    payload = jwt.decode(_issue(service), options={"verify_signature": False})
    kid = jwt.get_unverified_header(_issue(service))["kid"]
    other = jwt.encode(payload, SECRET, algorithm="HS512", headers={"kid": kid})
    with pytest.raises(Unauthorized):
        service.decode(other)


def test_expired_token_is_refused() -> None:
    service = _service(access_token_ttl_seconds=60)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    with pytest.raises(Unauthorized) as info:
        service.decode(_issue(service, now=old))
    assert info.value.code == "token_expired"


def test_wrong_audience_is_refused() -> None:
    token = _issue(_service(jwt_audience="someone-else"))
    with pytest.raises(Unauthorized):
        _service().decode(token)


def test_wrong_issuer_is_refused() -> None:
    token = _issue(_service(jwt_issuer="evil"))
    with pytest.raises(Unauthorized):
        _service().decode(token)


def test_tampered_payload_is_refused() -> None:
    service = _service()
    header, payload, signature = _issue(service).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    with pytest.raises(Unauthorized):
        service.decode(f"{header}.{_b64(claims)}.{signature}")


def test_previous_secret_still_verifies_during_rotation() -> None:
    old = _issue(TokenService(Settings(jwt_secret="p" * 48)))
    rotated = TokenService(Settings(jwt_secret=SECRET, jwt_previous_secrets="p" * 48))  # type: ignore[arg-type]
    assert rotated.decode(old).roles == ("viewer",)


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: _issue(TokenService(Settings(jwt_secret="o" * 48))), id="forged"),
        pytest.param(lambda: "not-a-jwt", id="garbage"),
        pytest.param(lambda: _issue(_service(jwt_audience="x")), id="wrong-audience"),
    ],
)
async def test_api_refuses_bad_tokens_with_401(client, factory, make_token) -> None:
    tenant = await factory.tenant()
    await factory.user(tenant)
    response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {make_token()}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_api_without_token_is_401(client) -> None:
    response = await client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_token_verified_before_is_refused_once_it_expires() -> None:
    """`decode` keeps the claims of verified tokens; a kept token still expires on time."""
    # `exp` is whole seconds: a TTL of 1 s left as little as a few milliseconds after issue.
    service = _service(access_token_ttl_seconds=3)
    token = _issue(service)
    claims = service.decode(token)
    assert service.decode(token) == claims  # answered from the verified tokens

    def expired() -> str | None:
        try:
            service.decode(token)
        except Unauthorized as exc:
            return exc.code
        return None

    await polling.until(expired, within=10)
    assert expired() == "token_expired"


def test_a_kept_token_changed_by_one_byte_is_verified_again() -> None:
    service = _service()
    token = _issue(service)
    service.decode(token)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(Unauthorized) as refused:
        service.decode(forged)
    assert refused.value.code == "invalid_token"
