"""The SSRF guard (`kit.outbound`) for identity-provider URLs, with SSO's error codes.

IdP URLs must be https and resolve to public addresses unless `SSO_ALLOW_PRIVATE_NETWORKS=true`
(IdPs on a private network; tests on loopback). LDAP URLs (`ldap://`, `ldaps://`) get the same
address check; plain `ldap://` stays acceptable (StartTLS may protect it).
"""

from __future__ import annotations

from bigfootlive.kit.outbound import HTTP_SCHEMES, OutboundUrlRefused
from bigfootlive.kit.outbound import check_outbound_url as _check
from bigfootlive.sso.base import SsoConfigError

LDAP_SCHEMES = frozenset({"ldap", "ldaps"})


async def check_outbound_url(url: str, allow_private: bool) -> None:
    await _guard(url, allow_private, HTTP_SCHEMES)


async def check_ldap_url(url: str, allow_private: bool) -> None:
    await _guard(url, allow_private, LDAP_SCHEMES)


async def _guard(url: str, allow_private: bool, schemes: frozenset[str]) -> None:
    try:
        await _check(
            url, allow_private=allow_private, schemes=schemes, require_tls=schemes == HTTP_SCHEMES
        )
    except OutboundUrlRefused as exc:
        code = "sso_unreachable" if exc.reason == "unresolvable" else "sso_bad_url"
        raise SsoConfigError(str(exc), code=code) from exc
