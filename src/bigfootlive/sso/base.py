"""What every protocol adapter implements (`SsoProtocol`), hands back, and the errors they raise."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bigfootlive.errors import BadRequest, Unauthorized
from bigfootlive.kit.crypto import DecryptionError
from bigfootlive.sso.schemas import AttributeMapping, Check, ProviderOut

if TYPE_CHECKING:
    from bigfootlive.identity.ports import IdentityState
    from bigfootlive.models import SsoProvider, Tenant

ConfigT = TypeVar("ConfigT")


class SsoRejected(Unauthorized):
    """The IdP's answer failed validation. The message is safe to show; details go to audit."""

    code = "sso_rejected"
    message = "The identity provider's response was not accepted"


class SsoConfigError(BadRequest):
    code = "sso_misconfigured"
    message = "The identity provider is not configured correctly"


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    """A user as asserted by an identity provider, normalised across protocols."""

    subject: str
    email: str | None
    name: str | None
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True
    mfa: bool = False
    method: str = "ext"


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list | tuple):
        return [str(v) for v in raw if v is not None and str(v) != ""]
    text = str(raw)
    return [text] if text else []


def pick(attrs: dict[str, Any], names: list[str]) -> list[str]:
    """Values of the first attribute in `names` that has any (case-insensitive names)."""
    lowered = {k.lower(): v for k, v in attrs.items()}
    for name in names:
        found = _values(attrs.get(name, lowered.get(name.lower())))
        if found:
            return found
    return []


def map_identity(
    attrs: dict[str, Any],
    mapping: AttributeMapping,
    *,
    defaults: AttributeMapping,
    subject: str | None = None,
    email_verified: bool = True,
    mfa: bool = False,
    method: str,
) -> ExternalIdentity:
    def names(field_name: str) -> list[str]:
        configured: list[str] = getattr(mapping, field_name)
        return configured or getattr(defaults, field_name)

    subjects = pick(attrs, names("subject"))
    sub = subjects[0] if subjects else subject
    if not sub:
        raise SsoRejected("The identity provider did not identify the user", code="sso_no_subject")
    emails = pick(attrs, names("email"))
    display = pick(attrs, names("name"))
    return ExternalIdentity(
        subject=sub,
        email=emails[0].strip().lower() if emails else None,
        name=display[0].strip() if display else None,
        groups=pick(attrs, names("groups")),
        email_verified=email_verified,
        mfa=mfa,
        method=method,
    )


def secret(state: IdentityState, row: SsoProvider, name: str) -> str | None:
    sealed = (row.secrets or {}).get(name)
    if not sealed:
        return None
    try:
        return state.secrets.decrypt(str(sealed), context=f"sso:{row.id}:{name}")
    except DecryptionError as exc:
        raise SsoConfigError(
            f"The stored {name} cannot be decrypted (was ENCRYPTION_KEYS changed?)",
            code="sso_secret_unreadable",
        ) from exc


class SsoProtocol(Protocol[ConfigT]):
    """One sign-in protocol (OIDC, OAuth2, SAML, LDAP) for its configuration type `ConfigT`.

    `oidc`, `saml` and `ldap` implement it; `provider.PROTOCOLS` names them, so the provider
    admin, the diagnostics and the flows never branch on the protocol.
    """

    def outbound_urls(self, config: ConfigT) -> list[tuple[str, str]]:
        """(field, URL) of every address the server connects to for this provider."""
        ...

    async def check_url(self, url: str, allow_private_networks: bool) -> None:
        """The SSRF guard for one of `outbound_urls`: raises SsoConfigError."""
        ...

    async def prepare(
        self, state: IdentityState, config: ConfigT
    ) -> tuple[ConfigT, dt.datetime | None]:
        """The configuration to store, completed from the IdP and checked, and when the IdP
        was asked (None: it was not)."""
        ...

    def describe(
        self, state: IdentityState, tenant_slug: str, row: SsoProvider, out: ProviderOut
    ) -> None:
        """Fill in `out` the addresses the IdP's administrator needs (callback, SP metadata)."""
        ...

    async def diagnose(
        self, state: IdentityState, row: SsoProvider, cfg: ConfigT, sample_username: str | None
    ) -> list[Check]:
        """The connection test: one Check per step; raises BigfootError when it cannot go on."""
        ...

    async def redirect(
        self,
        state: IdentityState,
        tenant: Tenant,
        row: SsoProvider,
        cfg: ConfigT,
        flow_state: str,
        flow: dict[str, Any],
    ) -> str | None:
        """Where to send the browser to sign in, adding to `flow` what the callback needs;
        None when the user signs in with a form instead."""
        ...
