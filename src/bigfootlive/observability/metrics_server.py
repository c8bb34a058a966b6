"""METRICS_PORT: /metrics on a port of its own (bind it to a network only Prometheus reaches).

A minimal HTTP/1.1 server on asyncio: `GET /metrics` answers the text the app renders, anything
else 404. Every API process (uvicorn worker) binds the port with SO_REUSEPORT, like uvicorn's
own port, so a scrape reaches one of them, as on the API's port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

log = structlog.get_logger(__name__)

_MAX_HEAD = 16_384
_UNAUTHORIZED = b'{"error":{"code":"unauthorized","message":"A valid metrics token is required"}}'


class MetricsServer:
    def __init__(
        self,
        host: str,
        port: int,
        render: Callable[[], Awaitable[bytes]],
        authorized: Callable[[str | None], bool],
    ) -> None:
        self.host, self.port = host, port
        self.render, self.authorized = render, authorized
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_port=True
        )
        log.info("metrics_server_started", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            if len(head) > _MAX_HEAD:
                raise ValueError("request head too large")
            lines = head.decode("latin-1").split("\r\n")
            method, target, *_ = [*lines[0].split(" "), "", ""]
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            path = target.split("?", 1)[0]
            if method != "GET" or path != "/metrics":
                await _respond(writer, 404, b'{"error":{"code":"not_found","message":"Not found"}}')
            elif not self.authorized(headers.get("authorization")):
                await _respond(
                    writer,
                    401,
                    _UNAUTHORIZED,
                    extra=b"WWW-Authenticate: Bearer\r\n",
                )
            else:
                await _respond(writer, 200, await self.render(), CONTENT_TYPE_LATEST.encode())
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except Exception:
            log.warning("metrics_request_failed", exc_info=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    extra: bytes = b"",
) -> None:
    reason = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found"}[status]
    writer.write(
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n"
        % (status, reason, content_type, len(body), extra)
        + body
    )
    await writer.drain()
