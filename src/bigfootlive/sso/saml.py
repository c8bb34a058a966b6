"""SAML 2.0 service provider on pysaml2 (signatures checked by Debian's `xmlsec1`), wrapped:
the IdP metadata, the SP metadata and AuthnRequests.

Posted responses are checked by `saml_response`.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import warnings
from dataclasses import dataclass

from cryptography import x509

with warnings.catch_warnings():
    # pysaml2 still names cryptography's CFB mode where cryptography 46 deprecates it.
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.mdstore import MetadataStore
    from saml2.metadata import entity_descriptor
    from saml2.saml import NAMEID_FORMAT_UNSPECIFIED

from bigfootlive.sso.base import SsoConfigError, SsoRejected
from bigfootlive.sso.schemas import SamlConfig

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
    conf = sp_config(sp, cfg, metadata_xml, allow_unsolicited=False)
    return str(entity_descriptor(conf))


def idp_info(metadata_xml: str) -> IdpInfo:
    """The one IdP a metadata document describes: entity id, SSO URL, signing certificates."""
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
