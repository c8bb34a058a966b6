"""Keeping the identity providers' published metadata fresh (one job per provider, tasks.py).

OIDC: the discovery document and the JWKS are cached for `oidc_metadata.METADATA_TTL` (1 h) and
fetched on demand at sign-in. The refresh fetches both again every 15 minutes, so a signing key
the IdP publishes ahead of a rollover is known before the first token signed with it arrives,
and an IdP outage shorter than the TTL never empties the cache. A failed refresh leaves the
cached copies in place and gives them another TTL, for at most STALE_LIMIT after the last
success, so sign-in keeps working with the last good copy while the IdP's metadata endpoints
are down.

SAML: a provider configured with `idp_metadata_url` has the document fetched again (through
the same SSRF guard), checked as when it is saved (`saml.idp_info`), and stored only when it is
valid and describes the same IdP entity; otherwise the stored document stays as it was.

Each attempt is recorded on the provider row (`metadata_*`), shown to the tenant's admins.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass

import structlog
from cryptography.hazmat.primitives import hashes

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.db import utcnow
from bigfootlive.errors import BigfootError
from bigfootlive.identity.ports import IdentityState
from bigfootlive.sso import admin, oidc, oidc_metadata, saml
from bigfootlive.sso import repository as repo
from bigfootlive.sso.schemas import OidcConfig, ProtocolConfig, ProviderSettings, SamlConfig

log = structlog.get_logger(__name__)

# One provider's fetches must end within this; the job's own time limit is a little longer,
# so a hanging IdP is recorded as an error instead of killing the job.
REFRESH_BUDGET_SECONDS = 45.0
# How long after the last successful refresh the cached OIDC copies are kept alive.
STALE_LIMIT = dt.timedelta(hours=24)
ERROR_CHARS = 300


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BigfootError):
        text = f"{exc.code}: {exc.message}"
    elif isinstance(exc, TimeoutError):
        text = f"sso_timeout: no answer within {REFRESH_BUDGET_SECONDS:g} s"
    else:
        text = type(exc).__name__
    return text[:ERROR_CHARS]


async def refresh_provider(state: IdentityState, provider_id: uuid.UUID) -> str | None:
    """Refresh one provider's metadata and record the outcome on its row. Returns the status
    recorded ("ok" or "error"), or None when there was nothing to refresh."""
    async with state.db.transaction() as session:
        row = await repo.get_provider_unscoped(session, provider_id)
        if row is None or not row.enabled:
            return None
        cfg = ProviderSettings.model_validate(row.config).config
        last_good = row.metadata_refreshed_at
    # No transaction is held while the IdP is being fetched.
    document: SamlDocument | None = None
    if isinstance(cfg, OidcConfig):
        error = await _refresh_oidc(state, cfg, last_good)
    elif isinstance(cfg, SamlConfig) and cfg.idp_metadata_url:
        document, error = await _fetch_saml(state, cfg, cfg.idp_metadata_url)
    else:
        return None
    return await _record(state, provider_id, cfg, document, error)


async def _refresh_oidc(
    state: IdentityState, cfg: OidcConfig, last_good: dt.datetime | None
) -> str | None:
    out = oidc.outbound(state)
    try:
        async with asyncio.timeout(REFRESH_BUDGET_SECONDS):
            await oidc_metadata.refresh(out, cfg)
    except (BigfootError, TimeoutError) as exc:
        error = _describe(exc)
    else:
        return None
    kept = False
    if last_good is not None and utcnow() - last_good < STALE_LIMIT:
        kept = await oidc_metadata.keep_cached(out, cfg)
    log.warning("sso_metadata_refresh_failed", issuer=cfg.issuer, error=error, kept_cached=kept)
    return error


@dataclass(frozen=True, slots=True)
class SamlDocument:
    xml: str
    signing_certificates_sha256: list[str]


async def _fetch_saml(
    state: IdentityState, cfg: SamlConfig, url: str
) -> tuple[SamlDocument | None, str | None]:
    """(document to store, None) or (None, why not)."""
    try:
        async with asyncio.timeout(REFRESH_BUDGET_SECONDS):
            xml = await saml.fetch_metadata(state, url)
        info = await asyncio.to_thread(saml.idp_info, xml)
    except (BigfootError, TimeoutError) as exc:
        log.warning("sso_metadata_refresh_failed", url=url, error=_describe(exc))
        return None, _describe(exc)
    assert cfg.idp_metadata_xml is not None  # noqa: S101 - filled when saved
    try:
        stored = (await asyncio.to_thread(saml.idp_info, cfg.idp_metadata_xml)).entity_id
    except BigfootError:
        stored = None
    if stored is not None and info.entity_id != stored:
        # A refresh rolls keys; it does not silently switch the provider to another IdP.
        error = (
            f"sso_entity_changed: the metadata now describes {info.entity_id}, not {stored};"
            " save the provider again to accept it"
        )
        return None, error[:ERROR_CHARS]
    fingerprints = [c.fingerprint(hashes.SHA256()).hex() for c in info.certificates]
    return SamlDocument(xml=xml, signing_certificates_sha256=fingerprints), None


async def _record(
    state: IdentityState,
    provider_id: uuid.UUID,
    fetched_for: ProtocolConfig,
    document: SamlDocument | None,
    error: str | None,
) -> str | None:
    async with state.db.transaction() as session:
        row = await repo.get_provider_unscoped(session, provider_id, for_update=True)
        if row is None:
            return None
        settings = ProviderSettings.model_validate(row.config)
        if settings.config != fetched_for:
            return None  # reconfigured (or refreshed by a duplicate job) meanwhile
        if (
            document is not None
            and isinstance(settings.config, SamlConfig)
            and document.xml != settings.config.idp_metadata_xml
        ):
            updated = settings.config.model_copy(update={"idp_metadata_xml": document.xml})
            row.config = settings.model_copy(update={"config": updated}).model_dump(mode="json")
            await AuditLog(session, None, None).record(
                AuditAction.SSO_METADATA_REFRESHED,
                tenant_id=row.tenant_id,
                target_type="sso_provider",
                target_id=row.id,
                details={
                    "protocol": "saml",
                    "signing_certificates_sha256": document.signing_certificates_sha256,
                },
            )
        admin.set_refresh_status(row, now=utcnow(), error=error, refreshed=error is None)
    return "error" if error else "ok"
