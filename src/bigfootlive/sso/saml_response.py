"""SAML responses, checked before and after pysaml2 (signatures by Debian's `xmlsec1`).

Before pysaml2 sees a response, `inspect_response` enforces what we will not leave to chance:
a size cap, no DOCTYPE/entities, exactly one plain (not encrypted) assertion as a direct child
of the Response, unique IDs, and for every signature: it sits directly in the element it signs,
has one reference to that element's ID, and uses only allow-listed transforms and algorithms.
That shape leaves no room for signature-wrapping (XSW) tricks. After pysaml2 verified the
signatures, audience and validity window, `_check_response` checks Destination, Recipient,
Issuer and InResponseTo against what we expect; the caller records the assertion ID in the
per-tenant replay cache.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bigfootlive.sso.base import ExternalIdentity, SsoRejected, map_identity
from bigfootlive.sso.saml import (
    IdpInfo,
    SpEndpoints,
    check_xml_text,
    idp_info,
    load_pysaml2,
    sp_config,
)
from bigfootlive.sso.schemas import AttributeMapping, SamlConfig

if TYPE_CHECKING:
    from saml2.response import AuthnResponse

MAX_RESPONSE_BYTES = 256 * 1024


NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
}
_Q = {k: "{" + v + "}" for k, v in NS.items()}


ALLOWED_TRANSFORMS = frozenset(
    {
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    }
)


STRONG_SIG_ALGS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)


STRONG_DIGESTS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)


SHA1_SIG = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"


SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"


MFA_CONTEXTS = frozenset(
    {
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
        "http://schemas.microsoft.com/claims/multipleauthn",
        "https://refeds.org/profile/mfa",
    }
)


SAML_DEFAULTS = AttributeMapping(
    subject=[],
    email=[
        "mail",
        "email",
        "emailAddress",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
    ],
    name=[
        "displayName",
        "cn",
        "name",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "urn:oid:2.16.840.1.113730.3.1.241",
    ],
    groups=[
        "groups",
        "memberOf",
        "isMemberOf",
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        "http://schemas.xmlsoap.org/claims/Group",
    ],
)


@dataclass(frozen=True, slots=True)
class SamlAssertion:
    identity: ExternalIdentity
    assertion_id: str
    in_response_to: str | None
    not_on_or_after: dt.datetime | None


def decode_response(b64: str) -> bytes:
    if len(b64) > MAX_RESPONSE_BYTES * 4 // 3 + 4:
        raise SsoRejected("The SAML response is too large", code="saml_too_large")
    try:
        raw = base64.b64decode(b64, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise SsoRejected("The SAML response is not base64", code="saml_malformed") from exc
    check_xml_text(raw, MAX_RESPONSE_BYTES, what="response")
    return raw


def inspect_response(raw: bytes, *, allow_sha1: bool) -> Element:
    """Structural checks that make signature wrapping impossible; returns the parsed root."""
    try:
        root: Element = SafeET.fromstring(raw, forbid_dtd=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError) as exc:
        raise SsoRejected("The SAML response is not valid XML", code="saml_malformed") from exc
    if root.tag != _Q["samlp"] + "Response":
        raise SsoRejected("Not a SAML Response", code="saml_malformed")
    if root.find(f".//{_Q['saml']}EncryptedAssertion") is not None:
        raise SsoRejected("Encrypted assertions are not supported", code="saml_encrypted")
    assertions = root.findall(f".//{_Q['saml']}Assertion")
    direct = root.findall(f"{_Q['saml']}Assertion")
    if len(assertions) != 1 or len(direct) != 1:
        raise SsoRejected(
            "The response must carry exactly one assertion", code="saml_assertion_count"
        )
    seen: set[str] = set()
    for element in root.iter():
        ident = element.get("ID")
        if ident is not None:
            if ident in seen:
                raise SsoRejected("Duplicate IDs in the SAML response", code="saml_duplicate_id")
            seen.add(ident)
    parents = {child: parent for parent in root.iter() for child in parent}
    signatures = root.findall(f".//{_Q['ds']}Signature")
    for signature in signatures:
        _check_signature(signature, parents.get(signature), allow_sha1=allow_sha1)
    if direct[0].find(f"{_Q['ds']}Signature") is None:
        raise SsoRejected("The assertion is not signed", code="saml_unsigned")
    return root


def _check_signature(signature: Element, parent: Element | None, *, allow_sha1: bool) -> None:
    if parent is None or parent.tag not in {_Q["samlp"] + "Response", _Q["saml"] + "Assertion"}:
        raise SsoRejected("A signature is in an unexpected place", code="saml_signature_shape")
    signed_info = signature.find(f"{_Q['ds']}SignedInfo")
    if signed_info is None:
        raise SsoRejected("A signature has no SignedInfo", code="saml_signature_shape")
    references = signed_info.findall(f"{_Q['ds']}Reference")
    if len(references) != 1 or references[0].get("URI") != "#" + (parent.get("ID") or "\0"):
        raise SsoRejected(
            "A signature does not cover the element it sits in", code="saml_signature_shape"
        )
    sig_methods = {_Q["ds"] + "SignatureMethod": (STRONG_SIG_ALGS, SHA1_SIG)}
    for tag, (strong, sha1) in sig_methods.items():
        for method in signed_info.findall(tag):
            _allowed_alg(method.get("Algorithm"), strong, sha1, allow_sha1)
    for digest in references[0].findall(f"{_Q['ds']}DigestMethod"):
        _allowed_alg(digest.get("Algorithm"), STRONG_DIGESTS, SHA1_DIGEST, allow_sha1)
    for transform in references[0].iter(_Q["ds"] + "Transform"):
        if transform.get("Algorithm") not in ALLOWED_TRANSFORMS:
            raise SsoRejected("A signature uses a forbidden transform", code="saml_transform")
        if len(transform):
            raise SsoRejected("A signature transform has parameters", code="saml_transform")


def _allowed_alg(alg: str | None, strong: frozenset[str], sha1: str, allow_sha1: bool) -> None:
    if alg in strong or (allow_sha1 and alg == sha1):
        return
    raise SsoRejected(f"Signature algorithm {alg} is not accepted", code="saml_weak_algorithm")


def parse_response(
    sp: SpEndpoints,
    cfg: SamlConfig,
    metadata_xml: str,
    mapping: AttributeMapping,
    *,
    saml_response_b64: str,
    expected_request_id: str | None,
) -> SamlAssertion:
    """Validate a posted SAMLResponse. Blocking (xmlsec1 runs as a subprocess): use a thread."""
    load_pysaml2()
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client

    raw = decode_response(saml_response_b64)
    inspect_response(raw, allow_sha1=cfg.allow_sha1)
    idp = idp_info(metadata_xml)
    unsolicited = expected_request_id is None
    if unsolicited and not cfg.allow_idp_initiated:
        raise SsoRejected("IdP-initiated sign-in is disabled", code="saml_unsolicited")
    client = Saml2Client(sp_config(sp, cfg, metadata_xml, allow_unsolicited=unsolicited))
    outstanding = {expected_request_id: "sso"} if expected_request_id else {}
    try:
        response = client.parse_authn_request_response(
            saml_response_b64, BINDING_HTTP_POST, outstanding=outstanding
        )
    except Exception as exc:  # pysaml2 signals every validation failure by an exception
        raise SsoRejected(
            f"The SAML response was rejected ({type(exc).__name__})", code="saml_invalid"
        ) from exc
    if response is None or response.assertion is None:
        raise SsoRejected("The SAML response carries no assertion", code="saml_invalid")
    try:
        return _check_response(response, sp, idp, cfg, mapping, expected_request_id)
    except (AttributeError, IndexError, TypeError, ValueError) as exc:  # missing elements
        raise SsoRejected("The SAML assertion is incomplete", code="saml_invalid") from exc


def _check_response(
    response: AuthnResponse,
    sp: SpEndpoints,
    idp: IdpInfo,
    cfg: SamlConfig,
    mapping: AttributeMapping,
    expected_request_id: str | None,
) -> SamlAssertion:
    message = response.response
    if message.destination is not None and message.destination != sp.acs_url:
        raise SsoRejected("The response is addressed elsewhere", code="saml_bad_destination")
    if message.in_response_to != expected_request_id:
        raise SsoRejected("The response does not answer our request", code="saml_in_response_to")
    assertion = response.assertion
    if assertion.issuer is None or assertion.issuer.text != idp.entity_id:
        raise SsoRejected("The assertion was issued by another IdP", code="saml_bad_issuer")
    confirmed = False
    for confirmation in assertion.subject.subject_confirmation or []:
        data = confirmation.subject_confirmation_data
        if data is None:
            continue
        if data.recipient == sp.acs_url and data.in_response_to == expected_request_id:
            confirmed = True
    if not confirmed:
        raise SsoRejected(
            "The assertion's recipient or InResponseTo is wrong", code="saml_bad_recipient"
        )
    name_id = assertion.subject.name_id
    subject = name_id.text.strip() if name_id is not None and name_id.text else None
    attrs: dict[str, Any] = dict(response.ava or {})
    contexts = {str(info[0]) for info in response.authn_info() if info and info[0]}
    not_on_or_after = None
    if assertion.conditions is not None and assertion.conditions.not_on_or_after:
        not_on_or_after = dt.datetime.fromisoformat(
            assertion.conditions.not_on_or_after.replace("Z", "+00:00")
        )
    identity = map_identity(
        attrs,
        mapping,
        defaults=SAML_DEFAULTS,
        subject=subject,
        mfa=bool(contexts & MFA_CONTEXTS),
        method="saml",
    )
    return SamlAssertion(
        identity=identity,
        assertion_id=str(assertion.id),
        in_response_to=message.in_response_to,
        not_on_or_after=not_on_or_after,
    )
