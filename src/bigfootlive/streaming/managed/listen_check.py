"""Whether the managed nginx can listen where its settings say, asked before it starts.

nginx that cannot bind a port retries for two seconds and exits; the supervisor would restart
it for ever, its log repeating `Address already in use`, while `/ready` reached whatever else
answers on that port. So `bigfootlive serve` binds each port itself first (as nginx does:
SO_REUSEADDR, the listen address of the configuration) and refuses to start with the port, the
program holding it when this user may see it, the setting to change and a free port to try.
`taken_port` reads nginx's own words, for a port taken while it was restarting.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from pathlib import Path

from bigfootlive.streaming.managed.nginx_conf import LayoutError, MediaLayout

_WILDCARD_V6 = ("::", "[::]")
_BIND_FAILED = re.compile(r"bind\(\) to \S*:(\d+) failed \(98: Address already in use\)")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp
_SUGGEST_WITHIN = 100  # ports after a taken one tried for a free one to suggest


class PortTaken(LayoutError):
    """A port of the media server another program listens on (or nginx may not bind)."""


def _settings_of(layout: MediaLayout) -> list[tuple[str, str, int]]:
    return [("RTMP", "RTMP_PORT", layout.rtmp_port), ("HTTP", "MEDIA_HTTP_PORT", layout.http_port)]


def bind_error(host: str, port: int) -> OSError | None:
    """Why a listener on host:port (nginx's `listen` address) cannot be made, or None."""
    if host in _WILDCARD_V6:
        family, address = socket.AF_INET6, "::"
    else:
        family, address = socket.AF_INET, host or "0.0.0.0"  # noqa: S104 - nginx's own address
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # as `ipv6only=off`
        try:
            probe.bind((address, port))
        except OSError as exc:
            return exc
    return None


def check_ports(layout: MediaLayout, *, api_port: int | None = None) -> None:
    """Raise PortTaken naming the first of the media server's ports that cannot be listened
    on, and what to do about it."""
    host = layout.listen_host or "0.0.0.0"  # noqa: S104 - nginx's listen address
    ports = _settings_of(layout)
    if layout.rtmp_port == layout.http_port:
        raise PortTaken(
            f"RTMP_PORT and MEDIA_HTTP_PORT are both {layout.rtmp_port}: the media server "
            "needs two ports; set one of them to another port"
        )
    if api_port is not None and api_port in (layout.rtmp_port, layout.http_port):
        name = "RTMP_PORT" if api_port == layout.rtmp_port else "MEDIA_HTTP_PORT"
        raise PortTaken(
            f"PORT (the API) and {name} are both {api_port}: set {name} to another port "
            f"(the media server's defaults are RTMP_PORT=1935 and MEDIA_HTTP_PORT=8080)"
        )
    for what, name, port in ports:
        problem = bind_error(host, port)
        if problem is None:
            continue
        if problem.errno == errno.EACCES:
            raise PortTaken(
                f"the media server's {what} port {port} needs root (ports below 1024): "
                f"set {name} to a port from 1024 up"
            )
        if problem.errno == errno.EADDRNOTAVAIL:
            raise PortTaken(
                f"MEDIA_LISTEN_HOST {layout.listen_host!r} is not an address of this host "
                f"(the media server's {what} port {port} cannot listen there)"
            )
        holder = holder_of(port)
        by = f" by {holder}" if holder else " by another program"
        others = {p for _, _, p in ports} | ({api_port} if api_port else set())
        free = _free_after(host, port, others)
        instead = f" (e.g. {name}={free}, free now)" if free else ""
        raise PortTaken(
            f"the media server's {what} port {port} on {host} is already in use{by}: "
            f"stop that program, or set {name} to a free port{instead}"
        )


def _free_after(host: str, port: int, avoid: set[int]) -> int | None:
    for candidate in range(port + 1, min(port + _SUGGEST_WITHIN, 65535) + 1):
        if candidate not in avoid and bind_error(host, candidate) is None:
            return candidate
    return None


def holder_of(port: int) -> str | None:
    """ "pid 1234 (name)" of the process listening on TCP `port`, when this user may see it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    name = (proc / "comm").read_text().strip()
                    return f"pid {proc.name} ({name})"
        except OSError:  # another user's process, or gone
            continue
    return None


def _listening_inodes(port: int) -> set[str]:
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def taken_port(layout: MediaLayout, error_log: str) -> str | None:
    """What to do when nginx's log says it could not bind one of its ports, else None."""
    for found in _BIND_FAILED.finditer(error_log):
        port = int(found.group(1))
        for what, name, own in _settings_of(layout):
            if port == own:
                return (
                    f"the media server's {what} port {port} is in use by another program: "
                    f"stop it, or set {name} to a free port and restart bigfootlive serve"
                )
    return None
