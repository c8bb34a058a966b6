"""OpenID Connect discovery documents and JWKS: fetched through the SSRF guard, checked, cached.

The discovery document and the JWKS are cached for METADATA_TTL; `refresh` fetches both again
(the scheduled metadata refresh), `keep_cached` extends the last good copies after a failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bigfootlive.kit import jsonparse
from bigfootlive.kit.backends import Cache
from bigfootlive.sso.base import SsoConfigError
from bigfootlive.sso.net import check_outbound_url
from bigfootlive.sso.schemas import OidcConfig

METADATA_TTL = 3600


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
