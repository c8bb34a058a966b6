"""OpenID Connect and plain OAuth2 (authorization code + PKCE) through Authlib's async client.

ID tokens are verified here with joserfc against the provider's JWKS: the algorithm must be an
asymmetric one the provider advertises (never `none`, never HMAC), the key is chosen by `kid`
(the JWKS is cached and fetched again once when a `kid` is unknown, for key rollover), and
`iss`, `aud`/`azp`, `exp`, `iat` and `nonce` are checked.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from typing import Any

import authlib.deprecate  # noqa: F401 - installs its own warning filter; must come first
import httpx
from authlib.common.errors import AuthlibBaseError
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bigfootlive.kit import jsonparse
from bigfootlive.kit.backends import Cache
from bigfootlive.sso.base import ExternalIdentity, SsoConfigError, SsoRejected, map_identity
from bigfootlive.sso.net import check_outbound_url
from bigfootlive.sso.schemas import AttributeMapping, OAuth2Config, OidcConfig

with warnings.catch_warnings():
    # Authlib prefers the `httpx2` fork and warns when it falls back to httpx, which we use.
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

ASYMMETRIC_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MFA_AMR = frozenset({"mfa", "otp", "hwk", "sms", "fpt", "face", "sc", "swk", "tel"})
CLOCK_SKEW = 60
METADATA_TTL = 3600

OIDC_DEFAULTS = AttributeMapping(
    subject=["sub"], email=["email"], name=["name", "preferred_username"], groups=["groups"]
)
OAUTH2_DEFAULTS = AttributeMapping(
    subject=["id", "sub", "user_id"],
    email=["email", "mail"],
    name=["name", "login", "username"],
    groups=["groups"],
)


@dataclass(frozen=True, slots=True)
class Outbound:
    """How this process talks to identity providers."""

    cache: Cache
    timeout: float
    allow_private_networks: bool

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    async def get_json(self, url: str) -> dict[str, Any]:
        await check_outbound_url(url, self.allow_private_networks)
        try:
            async with self.client() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise SsoConfigError(
                f"Could not reach {url}: {type(exc).__name__}", code="sso_unreachable"
            ) from exc
        if response.status_code != 200:
            raise SsoConfigError(
                f"{url} answered HTTP {response.status_code}", code="sso_unreachable"
            )
        try:
            body = jsonparse.loads(response.content)
        except ValueError as exc:
            raise SsoConfigError(f"{url} did not return JSON", code="sso_bad_metadata") from exc
        if not isinstance(body, dict):
            raise SsoConfigError(f"{url} did not return a JSON object", code="sso_bad_metadata")
        return body


def _meta_key(issuer: str) -> str:
    return f"sso:oidc:meta:{issuer}"


def _jwks_key(jwks_uri: str) -> str:
    return f"sso:oidc:jwks:{jwks_uri}"


async def discover(out: Outbound, cfg: OidcConfig, *, fresh: bool = False) -> dict[str, Any]:
    """The provider's discovery document, checked to name the configured issuer."""
    key = _meta_key(cfg.issuer)
    cached = None if fresh else await out.cache.get(key)
    if cached is not None:
        return dict(jsonparse.loads(cached))
    url = cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
    meta = await out.get_json(url)
    if meta.get("issuer") != cfg.issuer:
        raise SsoConfigError(
            f"The discovery document names issuer {meta.get('issuer')!r}, not {cfg.issuer!r}",
            code="sso_issuer_mismatch",
        )
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(field), str):
            raise SsoConfigError(f"The discovery document has no {field}", code="sso_bad_metadata")
    await out.cache.set(key, json.dumps(meta).encode(), ttl=METADATA_TTL)
    return meta


async def jwks(out: Outbound, jwks_uri: str, *, fresh: bool = False) -> KeySet:
    key = _jwks_key(jwks_uri)
    cached = None if fresh else await out.cache.get(key)
    if cached is not None:
        return KeySet.import_key_set(jsonparse.loads(cached))
    raw = await out.get_json(jwks_uri)
    try:
        keys = KeySet.import_key_set(raw)  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise SsoConfigError("The JWKS could not be read", code="sso_bad_jwks") from exc
    await out.cache.set(key, json.dumps(raw).encode(), ttl=METADATA_TTL)
    return keys


async def refresh(out: Outbound, cfg: OidcConfig) -> int:
    """Fetch the discovery document and the JWKS again; each replaces its cached copy only
    once it was fetched and checked. Returns the number of published keys."""
    meta = await discover(out, cfg, fresh=True)
    return len((await jwks(out, str(meta["jwks_uri"]), fresh=True)).keys)


async def keep_cached(out: Outbound, cfg: OidcConfig) -> bool:
    """After a failed refresh: give the cached discovery document and JWKS another
    METADATA_TTL, so sign-in keeps working with the last good copy. False if none is cached."""
    meta_raw = await out.cache.get(_meta_key(cfg.issuer))
    if meta_raw is None:
        return False
    await out.cache.set(_meta_key(cfg.issuer), meta_raw, ttl=METADATA_TTL)
    jwks_uri = jsonparse.loads(meta_raw).get("jwks_uri")
    keys_raw = await out.cache.get(_jwks_key(str(jwks_uri)))
    if keys_raw is None:
        return False
    await out.cache.set(_jwks_key(str(jwks_uri)), keys_raw, ttl=METADATA_TTL)
    return True


def _client(
    cfg: OidcConfig | OAuth2Config, client_secret: str | None, redirect_uri: str, timeout: float
) -> AsyncOAuth2Client:
    use_pkce = cfg.use_pkce if isinstance(cfg, OAuth2Config) else True
    return AsyncOAuth2Client(
        client_id=cfg.client_id,
        client_secret=client_secret,
        token_endpoint_auth_method=cfg.token_endpoint_auth_method,
        scope=" ".join(cfg.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256" if use_pkce else None,
        timeout=timeout,
        follow_redirects=False,
    )


async def authorization_url(
    out: Outbound,
    cfg: OidcConfig | OAuth2Config,
    *,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
) -> str:
    if isinstance(cfg, OidcConfig):
        endpoint = str((await discover(out, cfg))["authorization_endpoint"])
        extra: dict[str, str] = {"nonce": nonce}
    else:
        endpoint = cfg.authorize_url
        extra = {}
    client = _client(cfg, None, redirect_uri, out.timeout)
    try:
        url, _ = client.create_authorization_url(
            endpoint,
            state=state,
            code_verifier=code_verifier if client.code_challenge_method else None,
            **extra,
            **cfg.extra_authorize_params,
        )
    finally:
        await client.aclose()
    return str(url)


async def _exchange_code(
    out: Outbound,
    cfg: OidcConfig | OAuth2Config,
    client_secret: str | None,
    *,
    token_endpoint: str,
    userinfo_endpoint: str | None,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    await check_outbound_url(token_endpoint, out.allow_private_networks)
    if userinfo_endpoint:
        await check_outbound_url(userinfo_endpoint, out.allow_private_networks)
    client = _client(cfg, client_secret, redirect_uri, out.timeout)
    try:
        kwargs: dict[str, Any] = {"code": code, "redirect_uri": redirect_uri}
        if client.code_challenge_method:
            kwargs["code_verifier"] = code_verifier
        token = dict(
            await client.fetch_token(token_endpoint, grant_type="authorization_code", **kwargs)
        )
        userinfo = None
        if userinfo_endpoint:
            response = await client.get(userinfo_endpoint, headers={"Accept": "application/json"})
            if response.status_code != 200:
                raise SsoRejected(
                    f"The userinfo endpoint answered HTTP {response.status_code}",
                    code="sso_userinfo_failed",
                )
            userinfo = jsonparse.loads(response.content)
            if not isinstance(userinfo, dict):
                raise SsoRejected(
                    "The userinfo answer is not an object", code="sso_userinfo_failed"
                )
    except AuthlibBaseError as exc:
        raise SsoRejected(
            f"The token request was refused: {exc.error}", code="sso_token_failed"
        ) from exc
    except (httpx.HTTPError, ValueError, RecursionError) as exc:  # Authlib parses with json
        raise SsoRejected(
            f"The token request failed: {type(exc).__name__}", code="sso_token_failed"
        ) from exc
    finally:
        await client.aclose()
    return token, userinfo


async def verify_id_token(
    out: Outbound, cfg: OidcConfig, meta: dict[str, Any], id_token: str, *, nonce: str
) -> dict[str, Any]:
    # joserfc parses the header and the claims with the recursive json module.
    try:
        compact = jws.extract_compact(id_token.encode())
    except (JoseError, ValueError, RecursionError) as exc:
        raise SsoRejected("The ID token is malformed", code="sso_bad_id_token") from exc
    header = compact.protected
    advertised = set(meta.get("id_token_signing_alg_values_supported") or ["RS256"])
    allowed = sorted(advertised & ASYMMETRIC_ALGS)
    alg = header.get("alg")
    if alg not in allowed:
        raise SsoRejected(f"The ID token algorithm {alg!r} is not accepted", code="sso_bad_alg")
    kid = header.get("kid")
    keys = await jwks(out, str(meta["jwks_uri"]))
    if kid is not None and not _has_kid(keys, kid):
        keys = await jwks(out, str(meta["jwks_uri"]), fresh=True)  # key rollover
        if not _has_kid(keys, kid):
            raise SsoRejected("The ID token was signed by an unknown key", code="sso_unknown_key")
    try:
        claims = dict(jwt.decode(id_token, keys, algorithms=allowed).claims)
    except (JoseError, ValueError, RecursionError) as exc:
        raise SsoRejected("The ID token signature is not valid", code="sso_bad_signature") from exc
    _check_claims(claims, issuer=cfg.issuer, client_id=cfg.client_id, nonce=nonce)
    return claims


def _has_kid(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (JoseError, ValueError, KeyError):
        return False
    return True


def _check_claims(claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str) -> None:
    now = time.time()
    if claims.get("iss") != issuer:
        raise SsoRejected("The ID token was issued by someone else", code="sso_bad_issuer")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if client_id not in audiences:
        raise SsoRejected("The ID token is meant for another client", code="sso_bad_audience")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise SsoRejected("The ID token is meant for another client", code="sso_bad_audience")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp + CLOCK_SKEW < now:
        raise SsoRejected("The ID token has expired", code="sso_expired")
    if not isinstance(iat, int | float) or iat - CLOCK_SKEW > now:
        raise SsoRejected("The ID token is not valid yet", code="sso_not_yet_valid")
    if not isinstance(claims.get("nonce"), str) or claims["nonce"] != nonce:
        raise SsoRejected("The ID token nonce does not match", code="sso_bad_nonce")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise SsoRejected("The ID token has no subject", code="sso_no_subject")


async def complete(
    out: Outbound,
    cfg: OidcConfig | OAuth2Config,
    client_secret: str | None,
    mapping: AttributeMapping,
    *,
    redirect_uri: str,
    code: str,
    code_verifier: str,
    nonce: str,
) -> ExternalIdentity:
    """Exchange the authorization code and turn the answer into an ExternalIdentity."""
    if isinstance(cfg, OAuth2Config):
        _, userinfo = await _exchange_code(
            out,
            cfg,
            client_secret,
            token_endpoint=cfg.token_url,
            userinfo_endpoint=cfg.userinfo_url,
            redirect_uri=redirect_uri,
            code=code,
            code_verifier=code_verifier,
        )
        return map_identity(userinfo or {}, mapping, defaults=OAUTH2_DEFAULTS, method="oauth2")

    meta = await discover(out, cfg)
    userinfo_endpoint = meta.get("userinfo_endpoint") if cfg.use_userinfo else None
    token, userinfo = await _exchange_code(
        out,
        cfg,
        client_secret,
        token_endpoint=str(meta["token_endpoint"]),
        userinfo_endpoint=str(userinfo_endpoint) if userinfo_endpoint else None,
        redirect_uri=redirect_uri,
        code=code,
        code_verifier=code_verifier,
    )
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SsoRejected("The provider returned no ID token", code="sso_no_id_token")
    claims = await verify_id_token(out, cfg, meta, id_token, nonce=nonce)
    attrs = dict(claims)
    if userinfo is not None:
        if userinfo.get("sub") != claims["sub"]:
            raise SsoRejected("The userinfo answer is for another user", code="sso_bad_userinfo")
        attrs.update(userinfo)
    amr = claims.get("amr") if isinstance(claims.get("amr"), list) else []
    return map_identity(
        attrs,
        mapping,
        defaults=OIDC_DEFAULTS,
        subject=str(claims["sub"]),
        email_verified=attrs.get("email_verified") is True,
        mfa=bool(MFA_AMR & {str(a) for a in amr or []}),
        method="oidc",
    )
