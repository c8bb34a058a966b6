"""Enterprise single sign-on: per-tenant OIDC, OAuth2, SAML 2.0 and LDAP providers."""
