"""`bigfootlive serve` for real, in a subprocess on a loopback port: what its logs and its
responses on the wire show (credentials in URLs, the `Server` header, chunked bodies)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h11
import httpx
import pytest
import websockets

from tests.fixtures.polling import until
from tests.fixtures.services import free_port

BIN = Path(sys.executable).with_name("bigfootlive")
MAX_BODY_BYTES = 4096


@dataclass
class Served:
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("served")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir}/bigfootlive.db",
        MAIL_OUTBOX_DIR=str(workdir / "outbox"),
        JWT_SECRET="served-test-secret-" + "z" * 60,
        LOG_LEVEL="INFO",
        MAX_BODY_BYTES=str(MAX_BODY_BYTES),
        MEDIA_SERVER_MODE="none",  # the API is what is served here (tests/e2e run nginx)
    )
    port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,  # no developer .env is picked up
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120  # imports and the first migration, on a busy machine
        with httpx.Client(timeout=1) as http:  # one client: a new one per poll costs ~25 ms CPU
            while True:
                assert proc.poll() is None, f"server exited:\n{log.read_text()}"
                try:
                    if http.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"server did not start:\n{log.read_text()}"
                time.sleep(0.1)
        yield Served(port=port, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _jwt_shaped() -> str:
    return (
        f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{secrets.token_urlsafe(12)}.{secrets.token_urlsafe(32)}"
    )


async def test_credentials_in_urls_never_reach_the_logs(served: Served) -> None:
    jwt = _jwt_shaped()
    opaque = {name: secrets.token_urlsafe(18) for name in ("access_token", "api_key", "code")}
    ws_url = (
        f"ws://127.0.0.1:{served.port}/ws/events/{uuid.uuid4()}"
        f"?token={jwt}&access_token={opaque['access_token']}"
    )
    async with websockets.connect(ws_url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404  # refused: the token in the URL is not a credential
    async with httpx.AsyncClient(base_url=served.base_url) as http:
        me = await http.get(
            "/api/auth/me", params={"token": jwt, "api_key": opaque["api_key"], "x": "1"}
        )
        hook = await http.post(
            "/api/streaming/hooks/srs", params={"api_key": opaque["api_key"]}, json={}
        )
        callback = await http.get(
            "/api/auth/sso/callback", params={"code": opaque["code"], "state": jwt}
        )
    assert (me.status_code, hook.status_code) == (401, 401)
    assert 400 <= callback.status_code < 500

    await until(lambda: any("WebSocket" in line for line in served.lines()))
    ws_lines = [line for line in served.lines() if "WebSocket /ws/events/" in line]
    assert ws_lines, "\n".join(served.lines())
    assert all(json.loads(line)["logger"].startswith("uvicorn") for line in ws_lines)
    assert any("token=[redacted]&access_token=[redacted]" in line for line in ws_lines)
    logged = served.log.read_text(errors="replace")
    for secret in (jwt, jwt.split(".")[2], *opaque.values()):
        assert secret not in logged


def test_responses_do_not_name_the_server_software(served: Served) -> None:
    response = httpx.get(f"{served.base_url}/health")
    assert response.status_code == 200
    assert "server" not in response.headers
    missing = httpx.get(f"{served.base_url}/no-such-page")
    assert "server" not in missing.headers


async def test_websocket_handshake_does_not_name_the_server_software(served: Served) -> None:
    url = f"ws://127.0.0.1:{served.port}/ws/events/{uuid.uuid4()}"
    async with websockets.connect(url) as ws:
        assert ws.response is not None
        assert "server" not in {name.lower() for name in ws.response.headers}


def _exchange(port: int, request: h11.Request, chunks: list[bytes]) -> tuple[int, dict, bytes]:
    """Send `request` and its body `chunks` over a real socket; the response."""
    conn = h11.Connection(h11.CLIENT)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        data = conn.send(request)
        for chunk in chunks:
            data += conn.send(h11.Data(data=chunk))
        if chunks or "chunked" in dict(request.headers).get(b"transfer-encoding", b"").decode():
            data += conn.send(h11.EndOfMessage())
        sock.sendall(data)
        status, headers, body = 0, {}, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status, headers, body


def _login(headers: list[tuple[str, str]]) -> h11.Request:
    return h11.Request(
        method="POST",
        target="/api/auth/login",
        headers=[("Host", "127.0.0.1"), ("Content-Type", "application/json"), *headers],
    )


def test_chunked_body_over_the_limit_is_413_on_a_real_socket(served: Served) -> None:
    chunks = [b'{"email": "' + b"a" * 1000] + [b"a" * 1000] * 8 + [b'"}']
    status, headers, body = _exchange(
        served.port, _login([("Transfer-Encoding", "chunked")]), chunks
    )
    assert status == 413, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_chunked_body_within_the_limit_is_read(served: Served) -> None:
    login = b'{"tenant": "none", "email": "ann@example.com", "password": "not-her-password"}'
    chunks = [login[:20], login[20:]]
    status, _, body = _exchange(served.port, _login([("Transfer-Encoding", "chunked")]), chunks)
    assert status == 401, body


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_sent(served: Served) -> None:
    request = _login([("Content-Length", str(MAX_BODY_BYTES * 100))])
    status, _, body = _exchange(served.port, request, [])
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "payload_too_large"
