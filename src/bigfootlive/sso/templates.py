"""Pre-filled provider settings for common identity providers.

Placeholders in angle brackets (`<your-okta-domain>`) are for the tenant admin to replace.
"""

from __future__ import annotations

from bigfootlive.sso.schemas import AttributeMapping, Template

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
