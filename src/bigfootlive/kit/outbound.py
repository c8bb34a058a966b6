"""Outbound requests to tenant-supplied URLs: refuse internal addresses (SSRF).

Tenant admins type URLs we connect to (webhook endpoints, IdP discovery, metadata and token
endpoints, LDAP servers), so by default those may not point at loopback, private, link-local
(cloud metadata at 169.254.169.254), carrier-grade NAT, multicast or otherwise non-global
addresses. Each domain has a setting that lifts the rule (`SSO_ALLOW_PRIVATE_NETWORKS`,
`WEBHOOK_ALLOW_PRIVATE_NETWORKS`) for on-prem targets and for tests on loopback.

A check done when a URL is saved is not enough: the name may resolve elsewhere later (DNS
rebinding). `pin` lets an HTTP client connect to the very address that was checked, keeping the
host name for the `Host` header, TLS SNI and certificate verification.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from typing import Literal
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Reason = Literal["bad_url", "not_public", "unresolvable"]
HTTP_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ldap": 389, "ldaps": 636}


class OutboundUrlRefused(Exception):
    """The URL may not be connected to; each domain maps `reason` to its own error code."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    return address.is_global and not address.is_multicast


async def check_outbound_url(
    url: str,
    *,
    allow_private: bool,
    schemes: Collection[str] = HTTP_SCHEMES,
    require_tls: bool = False,
) -> list[IPAddress]:
    """The addresses `url`'s host resolves to, all of them public; raises OutboundUrlRefused.

    With `allow_private` only the scheme is checked (and nothing is resolved: []).
    `require_tls` refuses plain http when the guard is on.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise OutboundUrlRefused(f"Not a valid URL: {url}", "bad_url") from exc
    if parts.scheme not in schemes or not parts.hostname:
        wanted = " or ".join(sorted(schemes))
        raise OutboundUrlRefused(f"Not an absolute {wanted} URL: {url}", "bad_url")
    if allow_private:
        return []
    if require_tls and parts.scheme == "http":
        raise OutboundUrlRefused("The URL must use https", "bad_url")
    host = parts.hostname
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port or _DEFAULT_PORTS.get(parts.scheme, 443), type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise OutboundUrlRefused(f"Cannot resolve {host}", "unresolvable") from exc
        # The scope id of a link-local IPv6 address ("fe80::1%eth0") is not part of the address.
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise OutboundUrlRefused(f"Cannot resolve {host}", "unresolvable")
    for address in addresses:
        if not is_public(address):
            raise OutboundUrlRefused(f"{host} resolves to a non-public address", "not_public")
    return addresses


def pin(url: str, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """(URL, headers, request extensions) that reach `address` while naming the original host.

    Use as `client.post(target, headers={**headers, **pinned_headers}, extensions=extensions)`.
    """
    original = httpx.URL(url)
    target = original.copy_with(host=str(address))
    extensions = {"sni_hostname": original.host} if original.scheme == "https" else {}
    return target, {"Host": original.netloc.decode("ascii")}, extensions
