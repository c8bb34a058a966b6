"""WebAuthn ceremonies (the `webauthn` library), with the relying party taken from settings."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from bigfootlive.config import Settings

__all__ = [
    "PasskeyError",
    "VerifiedPasskey",
    "authentication_options",
    "credential_id_of",
    "registration_options",
    "verify_assertion",
    "verify_attestation",
]


class PasskeyError(Exception):
    """The authenticator's response does not verify."""


def rp_id(settings: Settings) -> str:
    return settings.webauthn_rp_id or (urlsplit(settings.public_base_url).hostname or "localhost")


def origins(settings: Settings) -> list[str]:
    return settings.webauthn_origins or [settings.public_base_url.rstrip("/")]


def registration_options(
    settings: Settings,
    *,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    exclude: list[str],
) -> tuple[dict[str, Any], bytes]:
    """(options for navigator.credentials.create, the challenge to keep server-side)."""
    options = generate_registration_options(
        rp_id=rp_id(settings),
        rp_name=settings.webauthn_rp_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in exclude
        ],
    )
    return dict(options_to_json_dict(options)), options.challenge


def authentication_options(settings: Settings, *, allow: list[str]) -> tuple[dict[str, Any], bytes]:
    options = generate_authentication_options(
        rp_id=rp_id(settings),
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in allow],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return dict(options_to_json_dict(options)), options.challenge


class VerifiedPasskey:
    def __init__(self, credential_id: str, public_key: str, sign_count: int) -> None:
        self.credential_id = credential_id
        self.public_key = public_key
        self.sign_count = sign_count


def verify_attestation(
    settings: Settings, *, credential: dict[str, Any], challenge: bytes
) -> VerifiedPasskey:
    try:
        verified = verify_registration_response(
            credential=json.dumps(credential),
            expected_challenge=challenge,
            expected_rp_id=rp_id(settings),
            expected_origin=origins(settings),
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(str(exc)) from exc
    return VerifiedPasskey(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
    )


def credential_id_of(credential: dict[str, Any]) -> str | None:
    value = credential.get("rawId") or credential.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= 1400 else None


def verify_assertion(
    settings: Settings,
    *,
    credential: dict[str, Any],
    challenge: bytes,
    public_key: str,
    sign_count: int,
) -> int:
    """Verify a navigator.credentials.get() response; returns the new sign counter.

    The library refuses a counter that did not increase (a cloned authenticator), unless both
    counters are zero (authenticators that do not count, such as most synced passkeys).
    """
    try:
        verified = verify_authentication_response(
            credential=json.dumps(credential),
            expected_challenge=challenge,
            expected_rp_id=rp_id(settings),
            expected_origin=origins(settings),
            credential_public_key=base64url_to_bytes(public_key),
            credential_current_sign_count=sign_count,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(str(exc)) from exc
    return int(verified.new_sign_count)
