"""Client address and user agent, honouring X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection


def client_ip(conn: HTTPConnection, trusted_proxies: list[str]) -> str:
    peer = conn.client.host if conn.client else ""
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    forwarded = conn.headers.get("x-forwarded-for", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    # Walk from the nearest hop back; the first untrusted address is the client.
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


def _is_trusted(addr: str, trusted: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in trusted)


def user_agent(conn: HTTPConnection) -> str:
    return conn.headers.get("user-agent", "")[:512]
