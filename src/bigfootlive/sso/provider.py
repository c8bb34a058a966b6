"""A stored SSO provider: its parsed settings and the protocol that implements it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bigfootlive.errors import NotFound
from bigfootlive.models import SsoProvider
from bigfootlive.sso.base import SsoProtocol
from bigfootlive.sso.ldap import LdapProtocol
from bigfootlive.sso.oidc import OAuth2Protocol, OidcProtocol
from bigfootlive.sso.saml import SamlProtocol
from bigfootlive.sso.schemas import ProtocolConfig, ProviderSettings

PROTOCOLS: dict[str, SsoProtocol[Any]] = {
    "oidc": OidcProtocol(),
    "oauth2": OAuth2Protocol(),
    "saml": SamlProtocol(),
    "ldap": LdapProtocol(),
}


def protocol_of(name: str) -> SsoProtocol[Any]:
    """The implementation of a provider's `protocol` (validated by ProtocolConfig)."""
    return PROTOCOLS[name]


class ProviderNotFound(NotFound):
    code = "sso_provider_not_found"
    message = "No such SSO provider"


@dataclass(frozen=True, slots=True)
class LoadedProvider:
    row: SsoProvider
    settings: ProviderSettings

    @property
    def config(self) -> ProtocolConfig:
        return self.settings.config

    @property
    def protocol(self) -> SsoProtocol[Any]:
        return protocol_of(self.row.protocol)


def load(row: SsoProvider) -> LoadedProvider:
    return LoadedProvider(row=row, settings=ProviderSettings.model_validate(row.config))
