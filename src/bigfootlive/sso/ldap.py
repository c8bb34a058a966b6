"""LDAP sign-in with python-ldap: direct bind or search-then-bind, LDAPS or StartTLS.

Every function here blocks (python-ldap is synchronous): call them through `asyncio.to_thread`
(as `LdapProtocol`, the `SsoProtocol` implementation at the end, does).
The username is escaped for the filter (`escape_filter_chars`) or the DN (`escape_dn_chars`) it
is put into, an empty password is refused (it would be an unauthenticated bind, which servers
answer with success), and every call has a network and an operation timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import ldap
from ldap.dn import escape_dn_chars, explode_dn
from ldap.filter import escape_filter_chars
from ldap.ldapobject import LDAPObject

from bigfootlive.errors import ServiceUnavailable
from bigfootlive.sso.base import (
    ExternalIdentity,
    SsoConfigError,
    SsoRejected,
    map_identity,
    secret,
)
from bigfootlive.sso.net import check_ldap_url
from bigfootlive.sso.schemas import AttributeMapping, Check, LdapConfig, ProviderOut

if TYPE_CHECKING:
    from bigfootlive.identity.ports import IdentityState
    from bigfootlive.models import SsoProvider, Tenant

LDAP_DEFAULTS = AttributeMapping(
    subject=["entryUUID", "objectGUID"],
    email=["mail", "userPrincipalName"],
    name=["displayName", "cn"],
    groups=["memberOf"],
)


class LdapInvalidCredentials(SsoRejected):
    code = "invalid_credentials"
    message = "The username or password is incorrect"


class LdapUnavailable(ServiceUnavailable):
    code = "sso_unreachable"
    message = "The directory server could not be reached"


def clean_username(username: str) -> str:
    name = unicodedata.normalize("NFC", username).strip()
    if not name or len(name) > 256 or any(unicodedata.category(c).startswith("C") for c in name):
        raise LdapInvalidCredentials()
    return name


@contextmanager
def _connection(cfg: LdapConfig) -> Iterator[LDAPObject]:
    ca_file = None
    conn = ldap.initialize(cfg.url, bytes_mode=False)
    try:
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, cfg.timeout_seconds)
        conn.set_option(ldap.OPT_TIMEOUT, cfg.timeout_seconds)
        if cfg.url.startswith("ldaps://") or cfg.start_tls:
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            if cfg.ca_cert_pem:
                fd, ca_file = tempfile.mkstemp(prefix="bfl-ldap-ca-", suffix=".pem")
                with os.fdopen(fd, "w") as handle:
                    handle.write(cfg.ca_cert_pem)
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, ca_file)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        if cfg.start_tls:
            conn.start_tls_s()
        yield conn
    except (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR) as exc:
        raise LdapUnavailable(f"The directory server could not be reached: {_desc(exc)}") from exc
    finally:
        with suppress(ldap.LDAPError):
            conn.unbind_s()
        if ca_file is not None:
            os.unlink(ca_file)


def _desc(exc: Exception) -> str:
    if exc.args and isinstance(exc.args[0], dict):
        info = exc.args[0]
        return str(info.get("desc", "")) + (f" ({info['info']})" if info.get("info") else "")
    return type(exc).__name__


def _decode(entry: dict[str, list[bytes]]) -> dict[str, list[str]]:
    return {k: [v.decode("utf-8", "replace") for v in values] for k, values in entry.items()}


def _attributes(mapping: AttributeMapping, cfg: LdapConfig) -> list[str]:
    names = {"entryUUID", "objectGUID", "mail", "cn", "displayName", "memberOf", "uid"}
    for field in ("subject", "email", "name", "groups"):
        names.update(getattr(mapping, field))
    return sorted(names)


def _bind(conn: LDAPObject, dn: str, password: str) -> None:
    try:
        conn.simple_bind_s(dn, password)
    except (ldap.INVALID_CREDENTIALS, ldap.INVALID_DN_SYNTAX, ldap.UNWILLING_TO_PERFORM) as exc:
        raise LdapInvalidCredentials() from exc


def _search(
    conn: LDAPObject, base: str, scope: int, query: str, attrs: list[str], limit: int = 0
) -> list[tuple[str, dict[str, list[str]]]]:
    try:
        rows = conn.search_ext_s(base, scope, query, attrs, sizelimit=limit)
    except ldap.SIZELIMIT_EXCEEDED as exc:
        raise LdapInvalidCredentials() from exc
    except ldap.NO_SUCH_OBJECT:
        return []
    return [(dn, _decode(entry)) for dn, entry in rows if dn]


def _service_bind(conn: LDAPObject, cfg: LdapConfig, bind_password: str | None) -> None:
    assert cfg.bind_dn is not None  # noqa: S101 - validated by LdapConfig
    try:
        conn.simple_bind_s(cfg.bind_dn, bind_password or "")
    except ldap.INVALID_CREDENTIALS as exc:
        raise SsoConfigError(
            "The service account could not bind to the directory", code="sso_ldap_bind_failed"
        ) from exc


def authenticate(
    cfg: LdapConfig,
    bind_password: str | None,
    mapping: AttributeMapping,
    *,
    username: str,
    password: str,
) -> ExternalIdentity:
    username = clean_username(username)
    if not password:
        raise LdapInvalidCredentials()
    attrs = _attributes(mapping, cfg)
    try:
        with _connection(cfg) as conn:
            if cfg.user_dn_template:
                dn = cfg.user_dn_template.format(username=escape_dn_chars(username))
                _bind(conn, dn, password)
                found = _search(conn, dn, ldap.SCOPE_BASE, "(objectClass=*)", attrs)
                if not found:
                    raise LdapInvalidCredentials()
                user_dn, entry = found[0]
                groups = _groups(conn, cfg, user_dn, username)
            else:
                assert cfg.user_search_base is not None  # noqa: S101 - validated by LdapConfig
                _service_bind(conn, cfg, bind_password)
                query = cfg.user_filter.format(username=escape_filter_chars(username))
                found = _search(conn, cfg.user_search_base, ldap.SCOPE_SUBTREE, query, attrs, 2)
                if len(found) != 1:
                    raise LdapInvalidCredentials()
                user_dn, entry = found[0]
                with _connection(cfg) as user_conn:
                    _bind(user_conn, user_dn, password)
                groups = _groups(conn, cfg, user_dn, username)
    except ldap.LDAPError as exc:
        raise LdapUnavailable(f"The directory refused the request: {_desc(exc)}") from exc
    member_of = entry.get("memberOf", [])
    names = [*member_of, *(_rdn_value(dn) for dn in member_of)]
    entry_attrs: dict[str, Any] = {**entry, "memberOf": sorted(set(names) | set(groups))}
    identity = map_identity(
        entry_attrs, mapping, defaults=LDAP_DEFAULTS, subject=user_dn, method="ldap"
    )
    return identity


def _rdn_value(dn: str) -> str:
    try:
        first = explode_dn(dn, notypes=True)
    except ldap.DECODING_ERROR:
        return dn
    return first[0] if first else dn


def _groups(conn: LDAPObject, cfg: LdapConfig, user_dn: str, username: str) -> list[str]:
    if not cfg.group_search_base:
        return []
    query = cfg.group_filter.format(
        dn=escape_filter_chars(user_dn), username=escape_filter_chars(username)
    )
    rows = _search(
        conn, cfg.group_search_base, ldap.SCOPE_SUBTREE, query, [cfg.group_name_attribute]
    )
    out: list[str] = []
    for dn, entry in rows:
        out.append(dn)
        out.extend(entry.get(cfg.group_name_attribute, []))
    return out


def test_connection(
    cfg: LdapConfig, bind_password: str | None, sample_username: str | None
) -> list[tuple[str, bool, str]]:
    """(check, ok, diagnostic) for: connect (+TLS), service bind, a sample user search."""
    checks: list[tuple[str, bool, str]] = []
    try:
        with _connection(cfg) as conn:
            checks.append(("connect", True, f"connected to {cfg.url}"))
            if cfg.start_tls:
                checks.append(("starttls", True, "StartTLS negotiated"))
            if not cfg.bind_dn:
                checks.append(("service_bind", True, "direct bind mode: no service account"))
                return checks
            try:
                _service_bind(conn, cfg, bind_password)
            except SsoConfigError as exc:
                checks.append(("service_bind", False, exc.message))
                return checks
            checks.append(("service_bind", True, f"bound as {cfg.bind_dn}"))
            base = cfg.user_search_base or ""
            query = (
                cfg.user_filter.format(username=escape_filter_chars(sample_username))
                if sample_username
                else cfg.user_filter.format(username="*")
            )
            try:
                rows = conn.search_ext_s(base, ldap.SCOPE_SUBTREE, query, ["1.1"], sizelimit=5)
                checks.append(("search", True, f"{len(rows)} entr(y/ies) match {query} in {base}"))
            except ldap.SIZELIMIT_EXCEEDED:
                checks.append(("search", True, f"more than 5 entries match {query} in {base}"))
            except ldap.LDAPError as exc:
                checks.append(("search", False, f"search under {base} failed: {_desc(exc)}"))
    except LdapUnavailable as exc:
        checks.append(("connect", False, exc.message))
    except ldap.LDAPError as exc:
        checks.append(("connect", False, f"LDAP error: {_desc(exc)}"))
    return checks


# ---------------------------------------------------------------- the SsoProtocol implementation


class LdapProtocol:
    """LDAP has no redirect: the user signs in with a form that posts to `flows.ldap_login`."""

    def outbound_urls(self, config: LdapConfig) -> list[tuple[str, str]]:
        return [("url", config.url)]

    async def check_url(self, url: str, allow_private_networks: bool) -> None:
        await check_ldap_url(url, allow_private_networks)

    async def prepare(
        self, state: IdentityState, config: LdapConfig
    ) -> tuple[LdapConfig, dt.datetime | None]:
        return config, None

    def describe(
        self, state: IdentityState, tenant_slug: str, row: SsoProvider, out: ProviderOut
    ) -> None:
        return None

    async def diagnose(
        self, state: IdentityState, row: SsoProvider, cfg: LdapConfig, sample_username: str | None
    ) -> list[Check]:
        await check_ldap_url(cfg.url, state.settings.sso_allow_private_networks)
        result = await asyncio.to_thread(
            test_connection,
            cfg,
            secret(state, row, "bind_password"),
            sample_username,
        )
        return [Check(name=n, ok=ok, detail=d) for n, ok, d in result]

    async def redirect(
        self,
        state: IdentityState,
        tenant: Tenant,
        row: SsoProvider,
        cfg: LdapConfig,
        flow_state: str,
        flow: dict[str, Any],
    ) -> str | None:
        return None
