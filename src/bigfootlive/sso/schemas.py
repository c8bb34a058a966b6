"""Provider configuration (per protocol), flows and diagnostics, as the API sees them."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from bigfootlive.authz.roles import Role

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
TokenAuth = Literal["client_secret_basic", "client_secret_post", "none"]
_HTTP_URL = Field(max_length=2000, pattern=r"^https?://")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttributeMapping(_Strict):
    """Which claim / attribute / LDAP attribute holds each field (first non-empty wins)."""

    subject: list[str] = Field(default_factory=list, max_length=5)
    email: list[str] = Field(default_factory=list, max_length=5)
    name: list[str] = Field(default_factory=list, max_length=5)
    groups: list[str] = Field(default_factory=list, max_length=5)


class OidcConfig(_Strict):
    protocol: Literal["oidc"] = "oidc"
    issuer: str = _HTTP_URL
    client_id: str = Field(min_length=1, max_length=500)
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    token_endpoint_auth_method: TokenAuth = "client_secret_basic"  # noqa: S105
    use_userinfo: bool = True
    # Some IdPs (Entra ID multi-tenant) publish a templated issuer; off by default.
    extra_authorize_params: dict[str, str] = Field(default_factory=dict, max_length=10)

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: list[str]) -> list[str]:
        return value if "openid" in value else ["openid", *value]


class OAuth2Config(_Strict):
    protocol: Literal["oauth2"] = "oauth2"
    authorize_url: str = _HTTP_URL
    token_url: str = _HTTP_URL
    userinfo_url: str = _HTTP_URL
    client_id: str = Field(min_length=1, max_length=500)
    scopes: list[str] = Field(default_factory=list, max_length=20)
    token_endpoint_auth_method: TokenAuth = "client_secret_post"  # noqa: S105
    use_pkce: bool = True
    extra_authorize_params: dict[str, str] = Field(default_factory=dict, max_length=10)


class SamlConfig(_Strict):
    protocol: Literal["saml"] = "saml"
    idp_metadata_url: str | None = Field(None, max_length=2000, pattern=r"^https?://")
    # Filled from idp_metadata_url when saved; may also be given directly.
    idp_metadata_xml: str | None = Field(None, max_length=500_000)
    allow_idp_initiated: bool = False
    want_response_signed: bool = False
    clock_skew_seconds: int = Field(120, ge=0, le=600)
    allow_sha1: bool = False

    @model_validator(mode="after")
    def _metadata_source(self) -> SamlConfig:
        if not self.idp_metadata_url and not self.idp_metadata_xml:
            raise ValueError("give idp_metadata_url or idp_metadata_xml")
        return self


class LdapConfig(_Strict):
    protocol: Literal["ldap"] = "ldap"
    url: str = Field(max_length=500, pattern=r"^ldaps?://")
    start_tls: bool = False
    ca_cert_pem: str | None = Field(None, max_length=20_000)
    timeout_seconds: float = Field(5.0, gt=0, le=30)
    # Direct bind: the user's DN from a template, e.g. "uid={username},ou=people,dc=example,dc=org".
    user_dn_template: str | None = Field(None, max_length=500)
    # Search-then-bind: the service account finds the user's DN first.
    bind_dn: str | None = Field(None, max_length=500)
    user_search_base: str | None = Field(None, max_length=500)
    user_filter: str = Field("(uid={username})", max_length=500)
    group_search_base: str | None = Field(None, max_length=500)
    group_filter: str = Field("(&(objectClass=groupOfNames)(member={dn}))", max_length=500)
    group_name_attribute: str = Field("cn", max_length=100)

    @model_validator(mode="after")
    def _one_bind_mode(self) -> LdapConfig:
        if not self.user_dn_template and not (self.bind_dn and self.user_search_base):
            raise ValueError("give user_dn_template, or bind_dn and user_search_base")
        if self.user_dn_template and "{username}" not in self.user_dn_template:
            raise ValueError("user_dn_template must contain {username}")
        if "{username}" not in self.user_filter:
            raise ValueError("user_filter must contain {username}")
        return self


ProtocolConfig = Annotated[
    OidcConfig | OAuth2Config | SamlConfig | LdapConfig, Field(discriminator="protocol")
]


class ProviderSecrets(_Strict):
    """Write-only. A field left out keeps the stored value; an empty string removes it."""

    client_secret: str | None = Field(None, max_length=2000)
    bind_password: str | None = Field(None, max_length=500)


class ProviderIn(_Strict):
    id: uuid.UUID | None = Field(None, description="Update this provider; omit to create one")
    name: str = Field(min_length=1, max_length=100)
    enabled: bool = True
    config: ProtocolConfig
    secrets: ProviderSecrets = Field(default_factory=ProviderSecrets)
    attribute_mapping: AttributeMapping = Field(default_factory=AttributeMapping)
    role_mapping: dict[str, Role] = Field(
        default_factory=dict, max_length=200, description="IdP group name or DN -> role"
    )
    default_role: Role = Role.VIEWER
    jit_provisioning: bool = True
    sso_required: bool = Field(
        False, description="Disable password sign-in for the tenant, except break-glass admins"
    )
    break_glass_emails: list[EmailStr] = Field(default_factory=list, max_length=10)
    domains: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        cleaned = sorted({d.strip().lower() for d in value})
        for domain in cleaned:
            if not _DOMAIN_RE.match(domain):
                raise ValueError(f"not a domain name: {domain}")
        return cleaned


class ProviderSettings(BaseModel):
    """What is stored in `SsoProvider.config` (ProviderIn minus id, name, enabled, secrets)."""

    config: ProtocolConfig
    attribute_mapping: AttributeMapping = Field(default_factory=AttributeMapping)
    role_mapping: dict[str, Role] = Field(default_factory=dict)
    default_role: Role = Role.VIEWER
    jit_provisioning: bool = True
    sso_required: bool = False
    break_glass_emails: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)


class MetadataRefreshOut(BaseModel):
    """The background refresh of the IdP's published metadata (OIDC discovery + JWKS, SAML
    metadata URL). All null for providers it does not apply to, or not attempted yet."""

    status: Literal["ok", "error"] | None = None
    checked_at: dt.datetime | None = Field(None, description="The latest attempt")
    refreshed_at: dt.datetime | None = Field(
        None, description="The latest success: when the copy in use was fetched"
    )
    error: str | None = Field(None, description="Why the latest attempt failed")


class ProviderOut(BaseModel):
    id: uuid.UUID
    name: str
    protocol: str
    enabled: bool
    config: ProtocolConfig
    attribute_mapping: AttributeMapping
    role_mapping: dict[str, Role]
    default_role: Role
    jit_provisioning: bool
    sso_required: bool
    break_glass_emails: list[str]
    domains: list[str]
    secrets_set: list[str] = Field(description="Names of the stored secrets (never their values)")
    callback_url: str | None = None
    sp_entity_id: str | None = None
    sp_metadata_url: str | None = None
    acs_url: str | None = None
    metadata_refresh: MetadataRefreshOut = Field(default_factory=MetadataRefreshOut)
    created_at: dt.datetime
    updated_at: dt.datetime


class TestIn(_Strict):
    provider_id: uuid.UUID
    sample_username: str | None = Field(None, max_length=256)


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class TestOut(BaseModel):
    ok: bool
    protocol: str
    checks: list[Check]


class Template(BaseModel):
    key: str
    name: str
    protocol: str
    description: str
    config: dict[str, Any]
    attribute_mapping: AttributeMapping
    notes: str = ""


class InitiateIn(_Strict):
    tenant: str | None = Field(None, max_length=63, description="Tenant slug")
    email: EmailStr | None = Field(None, description="Home-realm discovery by email domain")
    provider_id: uuid.UUID | None = None
    redirect_uri: str | None = Field(
        None, max_length=2000, description="Where to land afterwards; must be allow-listed"
    )

    @model_validator(mode="after")
    def _who(self) -> InitiateIn:
        if not self.tenant and not self.email:
            raise ValueError("give tenant or email")
        return self


class InitiateOut(BaseModel):
    provider_id: uuid.UUID
    protocol: str
    redirect_url: str | None = Field(None, description="Send the browser here (OIDC/OAuth2/SAML)")
    login_url: str | None = Field(None, description="LDAP: post username and password here")
    state: str | None = None


class CallbackIn(_Strict):
    state: str | None = Field(None, max_length=200)
    code: str | None = Field(None, max_length=4000)
    error: str | None = Field(None, max_length=200)
    error_description: str | None = Field(None, max_length=1000)


class LdapLoginIn(_Strict):
    tenant: str = Field(max_length=63)
    provider_id: uuid.UUID | None = None
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(max_length=1024)


class ExchangeIn(_Strict):
    code: str = Field(min_length=10, max_length=200)
