"""A media-server port another program holds: `bigfootlive serve` refuses to start, naming the
port, the program, the setting to change and a free port, instead of restarting nginx for ever
("Address already in use"); nginx's own bind failure (a port taken while it restarted) is named
in the log; and `/ready` does not take another program answering on MEDIA_HTTP_PORT for the
media server. Real listeners on loopback ports, a real nginx, a real `bigfootlive serve`."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from bigfootlive.config import Settings
from bigfootlive.streaming.managed import supervisor as supervising
from bigfootlive.streaming.managed.listen_check import PortTaken, check_ports, taken_port
from bigfootlive.streaming.managed.nginx_conf import INSTANCE_HEADER, MediaLayout, find_nginx
from tests.fixtures import nginx_rtmp, services
from tests.streaming.test_media_server_mode import _ready

BIN = Path(sys.executable).parent / "bigfootlive"
EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 - a listener of the test, closed with it


@contextlib.contextmanager
def occupied(port: int, host: str = "127.0.0.1") -> Iterator[socket.socket]:
    """A listener of this process on host:port (another program, to the media server)."""
    with socket.socket() as listener:
        listener.bind((host, port))
        listener.listen()
        yield listener


def _layout(tmp_path: Path, **values: object) -> MediaLayout:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        media_runtime_dir=str(tmp_path / "run"),
        recordings_dir=str(tmp_path / "media"),
        **values,
    )
    return MediaLayout.from_settings(settings)


def test_a_taken_port_is_named_with_its_holder_the_setting_and_a_free_port(tmp_path):
    rtmp, http = services.free_port(), services.free_port()
    layout = _layout(tmp_path, rtmp_port=rtmp, media_http_port=http)
    check_ports(layout)  # both free
    with occupied(http), pytest.raises(PortTaken) as refused:
        check_ports(layout)
    said = str(refused.value)
    assert f"HTTP port {http} on 127.0.0.1 is already in use" in said
    assert f"by pid {os.getpid()} (" in said  # this test's process holds it
    assert "set MEDIA_HTTP_PORT to a free port (e.g. MEDIA_HTTP_PORT=" in said
    free = int(re.findall(r"MEDIA_HTTP_PORT=(\d+)", said)[0])
    assert free not in (rtmp, http)
    with occupied(free):
        pass  # it was free
    # a listener on every address takes the port on loopback too; the RTMP port is checked
    with (
        occupied(rtmp, EVERY_ADDRESS),
        pytest.raises(PortTaken, match=f"RTMP port {rtmp} .*RTMP_PORT"),
    ):
        check_ports(layout)
    # and one on loopback takes it for nginx listening on every address
    everywhere = dataclasses.replace(layout, listen_host=EVERY_ADDRESS)
    with occupied(http), pytest.raises(PortTaken, match="MEDIA_HTTP_PORT"):
        check_ports(everywhere)


def test_ports_the_media_server_cannot_have_are_refused(tmp_path):
    port = services.free_port()
    same = _layout(tmp_path, rtmp_port=port, media_http_port=port)
    with pytest.raises(PortTaken, match=f"RTMP_PORT and MEDIA_HTTP_PORT are both {port}"):
        check_ports(same)
    layout = _layout(tmp_path, rtmp_port=port, media_http_port=services.free_port())
    with pytest.raises(PortTaken, match=f"PORT \\(the API\\) and RTMP_PORT are both {port}"):
        check_ports(layout, api_port=port)
    elsewhere = dataclasses.replace(layout, listen_host="192.0.2.7")  # TEST-NET: not ours
    with pytest.raises(PortTaken, match=r"MEDIA_LISTEN_HOST '192\.0\.2\.7' is not an address"):
        check_ports(elsewhere)


def test_nginx_words_for_a_port_it_could_not_bind_are_read(tmp_path):
    layout = _layout(tmp_path, rtmp_port=19350, media_http_port=18080)
    log = (
        "nginx: [emerg] bind() to 127.0.0.1:18080 failed (98: Address already in use)\n"
        "nginx: [emerg] still could not bind()\n"
    )
    said = taken_port(layout, log)
    assert said is not None
    assert "HTTP port 18080" in said
    assert "MEDIA_HTTP_PORT" in said
    v6 = "nginx: [emerg] bind() to [::]:19350 failed (98: Address already in use)"
    assert "RTMP_PORT" in (taken_port(layout, v6) or "")
    assert taken_port(layout, "bind() to 0.0.0.0:1 failed (98: Address already in use)") is None
    assert taken_port(layout, "nginx: [notice] signal process started") is None


@pytest.mark.parametrize("setting", ["RTMP_PORT", "MEDIA_HTTP_PORT"])
def test_serve_refuses_to_start_on_a_taken_port(tmp_path, setting):
    services.require(nginx_rtmp.available(), "nginx with libnginx-mod-rtmp")
    ports = {
        "RTMP_PORT": services.free_port(),
        "MEDIA_HTTP_PORT": services.free_port(),
    }
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NODE_ENV": "development",
        "MEDIA_SERVER_MODE": "managed",
        "PORT": str(services.free_port()),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite",
        "MEDIA_RUNTIME_DIR": str(tmp_path / "run"),
        "RECORDINGS_DIR": str(tmp_path / "media"),
        **{name: str(port) for name, port in ports.items()},
    }
    with occupied(ports[setting]):
        done = subprocess.run(
            [str(BIN), "serve"], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "the media server cannot start" in done.stderr
    assert f"port {ports[setting]} on 127.0.0.1 is already in use by pid {os.getpid()}" in (
        done.stderr
    )
    assert f"set {setting} to a free port" in done.stderr
    assert "Traceback" not in done.stderr
    assert "media_server_started" not in done.stdout + done.stderr  # nginx never ran


class _Foreign(http.server.BaseHTTPRequestHandler):
    status = 404
    headers_sent: dict[str, str] = {}  # set per server (foreign_http)

    def do_GET(self) -> None:
        self.send_response(self.status)
        for name, value in self.headers_sent.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def foreign_http(status: int, headers: dict[str, str] | None = None) -> Iterator[int]:
    """Another program's HTTP server on a loopback port, answering `status` to everything."""
    handler = type("Handler", (_Foreign,), {"status": status, "headers_sent": headers or {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [404, 200])
async def test_ready_does_not_take_another_program_for_the_media_server(settings, status):
    with foreign_http(status) as port:
        answer = await _ready(
            settings.model_copy(update={"media_server_mode": "managed", "media_http_port": port})
        )
    assert answer.status_code == 503
    check = answer.json()["checks"]["media_server"]
    assert check == (
        f"error: another program answers on port {port} (HTTP {status}), not this server's "
        "nginx: stop it, or set MEDIA_HTTP_PORT to a free port"
    )


async def test_ready_does_not_take_another_checkouts_nginx_for_its_own(settings, tmp_path):
    other = {INSTANCE_HEADER: "0123456789abcdef"}  # another MEDIA_RUNTIME_DIR's nginx
    with foreign_http(200, other) as port:
        managed = settings.model_copy(
            update={"media_server_mode": "managed", "media_http_port": port,
                    "media_runtime_dir": str(tmp_path / "run")}
        )  # fmt: skip
        answer = await _ready(managed)
        assert answer.status_code == 503
        assert answer.json()["checks"]["media_server"] == (
            f"error: port {port} answers as another BigfootLive media server (another checkout "
            "or MEDIA_RUNTIME_DIR): set MEDIA_HTTP_PORT to a free port"
        )
        own = {INSTANCE_HEADER: MediaLayout.from_settings(managed).instance}
    with foreign_http(200, own) as port:  # what our own nginx answers
        answer = await _ready(managed.model_copy(update={"media_http_port": port}))
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["media_server"] == "ok"


def test_a_port_taken_while_nginx_restarts_is_named_in_the_log(tmp_path, monkeypatch):
    services.require(nginx_rtmp.available(), "nginx with libnginx-mod-rtmp")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, media_runtime_dir=str(tmp_path / "run"),
        recordings_dir=str(tmp_path / "media"), rtmp_port=services.free_port(),
        media_http_port=services.free_port(), media_api_url="http://127.0.0.1:9",
    )  # fmt: skip
    layout = dataclasses.replace(MediaLayout.from_settings(settings), error_log_to_stderr=True)
    binary = find_nginx(settings)
    assert binary is not None
    # a logger not yet used (a used one is cached, out of capture_logs' reach)
    monkeypatch.setattr(supervising, "log", structlog.get_logger("bigfootlive.media_ports_test"))
    nginx = supervising.NginxSupervisor(layout, binary, backoff_seconds=3.0)
    with capture_logs() as logs:
        nginx.start()
        try:
            first = nginx.pid
            assert first is not None
            until_sync(lambda: services.port_open("127.0.0.1", layout.http_port), 10)
            os.kill(first, signal.SIGKILL)  # a crash; its workers go with it (the supervisor)
            taker = socket.socket()
            until_sync(lambda: _bound(taker, layout.http_port), 10)
            taker.listen()
            with taker:

                def named() -> bool:
                    return any(e["event"] == "media_server_port_taken" for e in logs)

                until_sync(named, 20)
        finally:
            nginx.stop()
    [taken] = [e for e in logs if e["event"] == "media_server_port_taken"]
    assert f"HTTP port {layout.http_port} is in use by another program" in taken["reason"]
    assert "MEDIA_HTTP_PORT" in taken["reason"]


def _bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def until_sync(check: Callable[[], object], within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
