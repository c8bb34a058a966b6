"""Pre-filled provider settings for common identity providers.

Placeholders in angle brackets (`<your-okta-domain>`) are for the tenant admin to replace.
"""

from __future__ import annotations

import re

from bigfootlive.errors import Unprocessable
from bigfootlive.sso.schemas import AttributeMapping, ProviderIn, Template

PLACEHOLDER = re.compile(r"<[^<>\n]{1,60}>")
# Long texts whose syntax has angle brackets (XML metadata, a PEM certificate) are not looked at.
_NOT_LOOKED_AT = frozenset({"protocol", "idp_metadata_xml", "ca_cert_pem"})

_OIDC_MAPPING = AttributeMapping(subject=["sub"], email=["email"], name=["name"], groups=["groups"])

TEMPLATES: list[Template] = [
    Template(
        key="okta",
        name="Okta",
        protocol="oidc",
        description="Okta OIDC web application (authorization code + PKCE).",
        config={
            "protocol": "oidc",
            "issuer": "https://<your-okta-domain>/oauth2/default",
            "client_id": "<client id>",
            "scopes": ["openid", "email", "profile", "groups"],
        },
        attribute_mapping=_OIDC_MAPPING,
        notes="Add a 'groups' claim to the authorization server to use group → role mapping.",
    ),
    Template(
        key="entra_id",
        name="Microsoft Entra ID",
        protocol="oidc",
        description="Entra ID (Azure AD) app registration, single tenant.",
        config={
            "protocol": "oidc",
            "issuer": "https://login.microsoftonline.com/<directory (tenant) id>/v2.0",
            "client_id": "<application (client) id>",
            "scopes": ["openid", "email", "profile"],
        },
        attribute_mapping=AttributeMapping(
            subject=["oid", "sub"],
            email=["email", "preferred_username"],
            name=["name"],
            groups=["groups", "roles"],
        ),
        notes="Enable 'groups' (object ids) or app roles in the token configuration.",
    ),
    Template(
        key="google_workspace",
        name="Google Workspace",
        protocol="oidc",
        description="Google OIDC; restrict sign-ins to your Workspace domain with 'hd'.",
        config={
            "protocol": "oidc",
            "issuer": "https://accounts.google.com",
            "client_id": "<client id>.apps.googleusercontent.com",
            "scopes": ["openid", "email", "profile"],
            "extra_authorize_params": {"hd": "<your-domain.com>"},
        },
        attribute_mapping=AttributeMapping(
            subject=["sub"], email=["email"], name=["name"], groups=[]
        ),
        notes="Google does not send groups in ID tokens: use the default role.",
    ),
    Template(
        key="onelogin",
        name="OneLogin",
        protocol="oidc",
        description="OneLogin OpenID Connect application.",
        config={
            "protocol": "oidc",
            "issuer": "https://<subdomain>.onelogin.com/oidc/2",
            "client_id": "<client id>",
            "scopes": ["openid", "email", "profile", "groups"],
        },
        attribute_mapping=_OIDC_MAPPING,
    ),
    Template(
        key="adfs",
        name="Microsoft AD FS",
        protocol="saml",
        description="AD FS relying party trust (SAML 2.0).",
        config={
            "protocol": "saml",
            "idp_metadata_url": (
                "https://<adfs host>/FederationMetadata/2007-06/FederationMetadata.xml"
            ),
        },
        attribute_mapping=AttributeMapping(
            subject=[],
            email=["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"],
            name=["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"],
            groups=["http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"],
        ),
        notes="Create the relying party from our SP metadata URL; issue E-Mail and Group claims.",
    ),
    Template(
        key="keycloak",
        name="Keycloak",
        protocol="oidc",
        description="Keycloak realm, confidential OIDC client.",
        config={
            "protocol": "oidc",
            "issuer": "https://<keycloak host>/realms/<realm>",
            "client_id": "<client id>",
            "scopes": ["openid", "email", "profile"],
        },
        attribute_mapping=_OIDC_MAPPING,
        notes="Add a 'Group Membership' mapper named 'groups' (full path off).",
    ),
    Template(
        key="auth0",
        name="Auth0",
        protocol="oidc",
        description="Auth0 regular web application.",
        config={
            "protocol": "oidc",
            "issuer": "https://<tenant>.auth0.com/",
            "client_id": "<client id>",
            "scopes": ["openid", "email", "profile"],
        },
        attribute_mapping=AttributeMapping(
            subject=["sub"],
            email=["email"],
            name=["name"],
            groups=["https://<your namespace>/groups"],
        ),
        notes="Groups need an Action adding a namespaced claim.",
    ),
    Template(
        key="jumpcloud",
        name="JumpCloud",
        protocol="saml",
        description="JumpCloud SSO application (SAML 2.0).",
        config={
            "protocol": "saml",
            "idp_metadata_url": "https://sso.jumpcloud.com/saml2/<application id>/metadata",
        },
        attribute_mapping=AttributeMapping(
            subject=[], email=["email"], name=["name"], groups=["memberOf"]
        ),
        notes="Enable 'Include group attribute' named memberOf.",
    ),
    Template(
        key="github",
        name="GitHub",
        protocol="oauth2",
        description="GitHub OAuth App (plain OAuth2, no ID token).",
        config={
            "protocol": "oauth2",
            "authorize_url": "https://github.com/login/oauth/authorize",
            "token_url": "https://github.com/login/oauth/access_token",
            "userinfo_url": "https://api.github.com/user",
            "client_id": "<client id>",
            "scopes": ["read:user", "user:email"],
            "use_pkce": True,
        },
        attribute_mapping=AttributeMapping(
            subject=["id"], email=["email"], name=["name", "login"], groups=[]
        ),
        notes="The user's public email is used; users without one cannot be provisioned.",
    ),
]

BY_KEY = {t.key: t for t in TEMPLATES}


def placeholders_left(body: ProviderIn) -> dict[str, str]:
    """The settings still holding a template's placeholder in angle brackets, by field
    (`{"config.client_id": "<client id>"}`): a list's items and a mapping's values included."""
    settings = {
        **{
            f"config.{k}": v for k, v in body.config.model_dump().items() if k not in _NOT_LOOKED_AT
        },
        **{f"attribute_mapping.{k}": v for k, v in body.attribute_mapping.model_dump().items()},
    }
    left: dict[str, str] = {}
    for field, value in settings.items():
        if isinstance(value, dict):
            texts = list(value.values())
        else:
            texts = value if isinstance(value, list) else [value]
        for text in texts:
            if isinstance(text, str) and (found := PLACEHOLDER.search(text)):
                left.setdefault(field, found.group(0))
                break
    return left


def refuse_placeholders(body: ProviderIn) -> None:
    """A provider saved as its template filled it would fail later, obscurely ("Cannot
    resolve <your-okta-domain>"): refused, naming each setting still to replace."""
    left = placeholders_left(body)
    if left:
        named = ", ".join(
            f"{field.partition('.')[2].replace('_', ' ')}"
            f"{' attribute' if field.startswith('attribute_mapping.') else ''} ({placeholder})"
            for field, placeholder in left.items()
        )
        raise Unprocessable(
            f"Replace the template's placeholders in angle brackets: {named}",
            code="sso_placeholders_left",
            fields=left,
        )
