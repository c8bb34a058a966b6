"""OpenID Connect and plain OAuth2 (authorization code + PKCE) through Authlib's async client.

ID tokens are verified here with joserfc against the provider's JWKS: the algorithm must be an
asymmetric one the provider advertises (never `none`, never HMAC), the key is chosen by `kid`
(the JWKS is cached and fetched again once when a `kid` is unknown, for key rollover), and
`iss`, `aud`/`azp`, `exp`, `iat` and `nonce` are checked.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import authlib.deprecate  # noqa: F401 - installs its own warning filter; must come first
import httpx
from authlib.common.errors import AuthlibBaseError
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bigfootlive.errors import BigfootError
from bigfootlive.kit import jsonparse
from bigfootlive.kit.crypto import random_token
from bigfootlive.sso.base import ExternalIdentity, SsoRejected, map_identity
from bigfootlive.sso.net import check_outbound_url
from bigfootlive.sso.oidc_metadata import Outbound, discover, jwks
from bigfootlive.sso.schemas import AttributeMapping, Check, OAuth2Config, OidcConfig, ProviderOut

if TYPE_CHECKING:
    from bigfootlive.identity.ports import IdentityState
    from bigfootlive.models import SsoProvider, Tenant

with warnings.catch_warnings():
    # Authlib prefers the `httpx2` fork and warns when it falls back to httpx, which we use.
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

ASYMMETRIC_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MFA_AMR = frozenset({"mfa", "otp", "hwk", "sms", "fpt", "face", "sc", "swk", "tel"})
CLOCK_SKEW = 60

C = TypeVar("C", bound=OidcConfig | OAuth2Config)

OIDC_DEFAULTS = AttributeMapping(
    subject=["sub"], email=["email"], name=["name", "preferred_username"], groups=["groups"]
)
OAUTH2_DEFAULTS = AttributeMapping(
    subject=["id", "sub", "user_id"],
    email=["email", "mail"],
    name=["name", "login", "username"],
    groups=["groups"],
)


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


# ---------------------------------------------------------------- the SsoProtocol implementations


def callback_url(state: IdentityState) -> str:
    return f"{state.settings.public_base_url}/api/auth/sso/callback"


def outbound(state: IdentityState) -> Outbound:
    return Outbound(
        cache=state.cache,
        timeout=state.settings.sso_http_timeout_seconds,
        allow_private_networks=state.settings.sso_allow_private_networks,
    )


class _RedirectFlow(Generic[C]):
    """What OIDC and plain OAuth2 share: a callback URL, and a redirect with PKCE (and nonce)."""

    async def check_url(self, url: str, allow_private_networks: bool) -> None:
        await check_outbound_url(url, allow_private_networks)

    async def prepare(self, state: IdentityState, config: C) -> tuple[C, dt.datetime | None]:
        return config, None

    def describe(
        self, state: IdentityState, tenant_slug: str, row: SsoProvider, out: ProviderOut
    ) -> None:
        out.callback_url = callback_url(state)

    async def redirect(
        self,
        state: IdentityState,
        tenant: Tenant,
        row: SsoProvider,
        cfg: C,
        flow_state: str,
        flow: dict[str, Any],
    ) -> str | None:
        flow["nonce"] = random_token(16)
        flow["verifier"] = random_token(48)
        return await authorization_url(
            outbound(state),
            cfg,
            redirect_uri=callback_url(state),
            state=flow_state,
            nonce=flow["nonce"],
            code_verifier=flow["verifier"],
        )


class OidcProtocol(_RedirectFlow[OidcConfig]):
    def outbound_urls(self, config: OidcConfig) -> list[tuple[str, str]]:
        return [("issuer", config.issuer)]  # discovery, then the endpoints it names

    async def diagnose(
        self, state: IdentityState, row: SsoProvider, cfg: OidcConfig, sample_username: str | None
    ) -> list[Check]:
        out = outbound(state)
        checks = []
        try:
            meta = await discover(out, cfg, fresh=True)
        except BigfootError as exc:
            return [Check(name="discovery", ok=False, detail=exc.message)]
        checks.append(
            Check(
                name="discovery", ok=True, detail=f"issuer {meta['issuer']} published its metadata"
            )
        )
        try:
            keys = await jwks(out, str(meta["jwks_uri"]), fresh=True)
            count = len(keys.keys)
            checks.append(
                Check(
                    name="jwks",
                    ok=count > 0,
                    detail=f"{count} signing key(s) at {meta['jwks_uri']}",
                )
            )
        except BigfootError as exc:
            checks.append(Check(name="jwks", ok=False, detail=exc.message))
        algs = set(meta.get("id_token_signing_alg_values_supported") or ["RS256"])
        usable = sorted(algs & ASYMMETRIC_ALGS)
        checks.append(
            Check(
                name="algorithms",
                ok=bool(usable),
                detail=f"ID token algorithms accepted: {', '.join(usable) or 'none'}",
            )
        )
        return checks


class OAuth2Protocol(_RedirectFlow[OAuth2Config]):
    def outbound_urls(self, config: OAuth2Config) -> list[tuple[str, str]]:
        return [
            ("authorize_url", config.authorize_url),  # fetched by the connection test
            ("token_url", config.token_url),
            ("userinfo_url", config.userinfo_url),
        ]

    async def diagnose(
        self, state: IdentityState, row: SsoProvider, cfg: OAuth2Config, sample_username: str | None
    ) -> list[Check]:
        checks = []
        out = outbound(state)
        for name, url in (
            ("authorize_url", cfg.authorize_url),
            ("token_url", cfg.token_url),
            ("userinfo_url", cfg.userinfo_url),
        ):
            try:
                await check_outbound_url(url, out.allow_private_networks)
                async with out.client() as http:
                    response = await http.get(url)
                checks.append(
                    Check(name=name, ok=True, detail=f"{url} answered HTTP {response.status_code}")
                )
            except BigfootError as exc:
                checks.append(Check(name=name, ok=False, detail=exc.message))
            except Exception as exc:
                checks.append(Check(name=name, ok=False, detail=f"{url}: {type(exc).__name__}"))
        return checks
