"""Outbound requests to tenant-configured URLs: refuse internal addresses (SSRF).

Tenant admins type the URLs we fetch (discovery, metadata, token endpoints), so by default they
may not point at loopback, private, link-local or otherwise internal addresses. Set
`SSO_ALLOW_PRIVATE_NETWORKS=true` for IdPs on a private network (and in tests, on loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from bigfootlive.sso.base import SsoConfigError


async def check_outbound_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SsoConfigError(f"Not an http(s) URL: {url}", code="sso_bad_url")
    if allow_private:
        return
    if parts.scheme != "https":
        raise SsoConfigError("Identity provider URLs must use https", code="sso_bad_url")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise SsoConfigError(f"Cannot resolve {parts.hostname}", code="sso_unreachable") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise SsoConfigError(
                f"{parts.hostname} resolves to a non-public address", code="sso_bad_url"
            )
