"""SAML 2.0 service provider on pysaml2 (signatures checked by Debian's `xmlsec1`), wrapped:
the IdP metadata, the SP metadata, AuthnRequests, and the `SsoProtocol` implementation.

Posted responses are checked by `saml_response`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import shutil
import uuid
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509

from bigfootlive.db import utcnow
from bigfootlive.errors import BigfootError
from bigfootlive.sso import oidc
from bigfootlive.sso.base import SsoConfigError, SsoRejected
from bigfootlive.sso.net import check_outbound_url
from bigfootlive.sso.schemas import Check, ProviderOut, SamlConfig

if TYPE_CHECKING:
    from saml2.config import SPConfig

    from bigfootlive.identity.ports import IdentityState
    from bigfootlive.models import SsoProvider, Tenant


@functools.cache
def load_pysaml2() -> None:
    """Import pysaml2 on first use, not with this module: its XML schema modules take a third
    of a worker process's start-up, and most processes never read SAML. Functions here call
    this before their own `from saml2 ... import`."""
    with warnings.catch_warnings():
        # pysaml2 still names cryptography's CFB mode where cryptography 46 deprecates it.
        warnings.simplefilter("ignore")
        import saml2.client
        import saml2.config
        import saml2.mdstore
        import saml2.metadata
        import saml2.response
        import saml2.saml  # noqa: F401


MAX_METADATA_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpEndpoints:
    entity_id: str
    acs_url: str


@dataclass(frozen=True, slots=True)
class IdpInfo:
    entity_id: str
    sso_url: str
    certificates: list[x509.Certificate]


def _xmlsec_binary() -> str:
    found = shutil.which("xmlsec1")
    if found is None:
        raise SsoConfigError("xmlsec1 is not installed on the server", code="sso_xmlsec_missing")
    return found


def sp_config(
    sp: SpEndpoints, cfg: SamlConfig, metadata_xml: str, *, allow_unsolicited: bool
) -> SPConfig:
    load_pysaml2()
    from saml2 import BINDING_HTTP_POST
    from saml2.config import SPConfig
    from saml2.saml import NAMEID_FORMAT_UNSPECIFIED

    conf = SPConfig()
    conf.load(
        {
            "entityid": sp.entity_id,
            "xmlsec_binary": _xmlsec_binary(),
            "metadata": {"inline": [metadata_xml]},
            "allow_unknown_attributes": True,
            "accepted_time_diff": cfg.clock_skew_seconds,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(sp.acs_url, BINDING_HTTP_POST)]},
                    "allow_unsolicited": allow_unsolicited,
                    "want_assertions_signed": True,
                    "want_response_signed": cfg.want_response_signed,
                    "authn_requests_signed": False,
                    "name_id_format": [NAMEID_FORMAT_UNSPECIFIED],
                }
            },
        }
    )
    return conf


def sp_metadata(sp: SpEndpoints, cfg: SamlConfig, metadata_xml: str) -> str:
    load_pysaml2()
    from saml2.metadata import entity_descriptor

    conf = sp_config(sp, cfg, metadata_xml, allow_unsolicited=False)
    return str(entity_descriptor(conf))


def idp_info(metadata_xml: str) -> IdpInfo:
    """The one IdP a metadata document describes: entity id, SSO URL, signing certificates."""
    load_pysaml2()
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.config import SPConfig
    from saml2.mdstore import MetadataStore

    try:
        check_xml_text(metadata_xml.encode(), MAX_METADATA_BYTES, what="metadata")
    except SsoRejected as exc:
        raise SsoConfigError(exc.message, code="sso_bad_metadata") from exc
    store = MetadataStore(attrc=None, config=SPConfig())
    try:
        store.load("inline", metadata_xml)
    except Exception as exc:  # pysaml2 raises assorted errors for bad metadata
        raise SsoConfigError(
            f"The IdP metadata could not be read: {type(exc).__name__}", code="sso_bad_metadata"
        ) from exc
    idps = list(store.identity_providers())
    if len(idps) != 1:
        raise SsoConfigError(
            f"The metadata must describe exactly one IdP (found {len(idps)})",
            code="sso_bad_metadata",
        )
    entity_id = idps[0]
    try:
        services = store.single_sign_on_service(entity_id, BINDING_HTTP_REDIRECT)
    except Exception:
        services = []
    if not services:
        raise SsoConfigError(
            "The IdP metadata has no HTTP-Redirect SingleSignOnService", code="sso_bad_metadata"
        )
    certs = []
    for _, pem in store.certs(entity_id, "idpsso", "signing"):
        body = "".join(line for line in str(pem).splitlines() if "CERTIFICATE" not in line)
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join(body.split()))))
        except ValueError as exc:
            raise SsoConfigError(
                "A certificate in the IdP metadata cannot be read", code="sso_bad_metadata"
            ) from exc
    if not certs:
        raise SsoConfigError("The IdP metadata has no signing certificate", code="sso_bad_metadata")
    return IdpInfo(entity_id=entity_id, sso_url=services[0]["location"], certificates=certs)


def authn_request(
    sp: SpEndpoints, cfg: SamlConfig, metadata_xml: str, *, relay_state: str
) -> tuple[str, str]:
    """(request id, URL to send the browser to) for an SP-initiated login (HTTP-Redirect)."""
    load_pysaml2()
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client

    info = idp_info(metadata_xml)
    client = Saml2Client(sp_config(sp, cfg, metadata_xml, allow_unsolicited=False))
    request_id, http_info = client.prepare_for_authenticate(
        entityid=info.entity_id, relay_state=relay_state, binding=BINDING_HTTP_REDIRECT
    )
    location = dict(http_info["headers"])["Location"]
    return str(request_id), str(location)


# ---------------------------------------------------------------- response checks


def check_xml_text(raw: bytes, limit: int, *, what: str) -> None:
    if len(raw) > limit:
        raise SsoRejected(f"The SAML {what} is too large", code="saml_too_large")
    lowered = raw.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise SsoRejected(f"The SAML {what} contains a DOCTYPE", code="saml_doctype")


def certificate_report(info: IdpInfo, now: dt.datetime) -> list[tuple[bool, str]]:
    """One (ok, diagnostic) per signing certificate."""
    out = []
    for cert in info.certificates:
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        subject = cert.subject.rfc4514_string()
        if now < start:
            out.append((False, f"{subject}: not valid before {start.isoformat()}"))
        elif now > end:
            out.append((False, f"{subject}: expired on {end.isoformat()}"))
        else:
            days = (end - now).days
            out.append((True, f"{subject}: valid until {end.date().isoformat()} ({days} days)"))
    return out


# ---------------------------------------------------------------- the SsoProtocol implementation


def sp_endpoints(state: IdentityState, tenant_slug: str, provider_id: uuid.UUID) -> SpEndpoints:
    base = f"{state.settings.public_base_url}/api/auth/sso/saml/{tenant_slug}/{provider_id}"
    return SpEndpoints(entity_id=f"{base}/metadata", acs_url=f"{base}/acs")


async def fetch_metadata(state: IdentityState, url: str) -> str:
    await check_outbound_url(url, state.settings.sso_allow_private_networks)
    out = oidc.outbound(state)
    try:
        async with out.client() as http:
            response = await http.get(url)
    except Exception as exc:
        raise SsoConfigError(
            f"Could not fetch the IdP metadata from {url}: {type(exc).__name__}",
            code="sso_unreachable",
        ) from exc
    if response.status_code != 200:
        raise SsoConfigError(f"{url} answered HTTP {response.status_code}", code="sso_unreachable")
    if len(response.content) > MAX_METADATA_BYTES:
        raise SsoConfigError("The IdP metadata is too large", code="sso_bad_metadata")
    return response.text


class SamlProtocol:
    def outbound_urls(self, config: SamlConfig) -> list[tuple[str, str]]:
        return [("idp_metadata_url", config.idp_metadata_url)] if config.idp_metadata_url else []

    async def check_url(self, url: str, allow_private_networks: bool) -> None:
        await check_outbound_url(url, allow_private_networks)

    async def prepare(
        self, state: IdentityState, config: SamlConfig
    ) -> tuple[SamlConfig, dt.datetime | None]:
        fetched_at = None
        if config.idp_metadata_url:
            fetched_at = utcnow()
            xml = await fetch_metadata(state, config.idp_metadata_url)
            config = config.model_copy(update={"idp_metadata_xml": xml})
        assert config.idp_metadata_xml is not None  # noqa: S101 - checked by SamlConfig
        await asyncio.to_thread(idp_info, config.idp_metadata_xml)
        return config, fetched_at

    def describe(
        self, state: IdentityState, tenant_slug: str, row: SsoProvider, out: ProviderOut
    ) -> None:
        sp = sp_endpoints(state, tenant_slug, row.id)
        out.sp_entity_id = sp.entity_id
        out.sp_metadata_url = sp.entity_id
        out.acs_url = sp.acs_url

    async def diagnose(
        self, state: IdentityState, row: SsoProvider, cfg: SamlConfig, sample_username: str | None
    ) -> list[Check]:
        checks = []
        xml = cfg.idp_metadata_xml
        if cfg.idp_metadata_url:
            try:
                xml = await fetch_metadata(state, cfg.idp_metadata_url)
                checks.append(Check(name="metadata_fetch", ok=True, detail=cfg.idp_metadata_url))
            except BigfootError as exc:
                checks.append(Check(name="metadata_fetch", ok=False, detail=exc.message))
        if not xml:
            return checks
        try:
            info = await asyncio.to_thread(idp_info, xml)
        except BigfootError as exc:
            return [*checks, Check(name="metadata", ok=False, detail=exc.message)]
        checks.append(
            Check(name="metadata", ok=True, detail=f"IdP {info.entity_id}, SSO at {info.sso_url}")
        )
        for ok, detail in certificate_report(info, utcnow()):
            checks.append(Check(name="certificate", ok=ok, detail=detail))
        return checks

    async def redirect(
        self,
        state: IdentityState,
        tenant: Tenant,
        row: SsoProvider,
        cfg: SamlConfig,
        flow_state: str,
        flow: dict[str, Any],
    ) -> str | None:
        assert cfg.idp_metadata_xml is not None  # noqa: S101 - filled when saved
        request_id, url = await asyncio.to_thread(
            authn_request,
            sp_endpoints(state, tenant.slug, row.id),
            cfg,
            cfg.idp_metadata_xml,
            relay_state=flow_state,
        )
        flow["request_id"] = request_id
        return url
