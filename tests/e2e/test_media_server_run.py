"""`bigfootlive media-server run`, the media server's container command (deploy/k8s
media-server.yaml, the compose file's media-server): it writes the generated configuration and
becomes nginx in the foreground, answering its health check and RTMP, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures import nginx_rtmp, services

BIN = Path(sys.executable).with_name("bigfootlive")


def test_media_server_run_serves_health_and_rtmp_until_sigterm(tmp_path: Path) -> None:
    services.require(nginx_rtmp.available(), "nginx with libnginx-mod-rtmp and ffmpeg")
    rtmp, http = services.free_port(), services.free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(
        NODE_ENV="test",
        JWT_SECRET="media-run-test-" + "k" * 40,
        MEDIA_SERVER_MODE="external",
        MEDIA_LISTEN_HOST="127.0.0.1",
        RTMP_PORT=str(rtmp),
        MEDIA_HTTP_PORT=str(http),
        MEDIA_RUNTIME_DIR=str(tmp_path / "media"),
        MEDIA_API_URL="http://127.0.0.1:9",
        NGINX_BINARY=nginx_rtmp.NGINX,
    )
    process = subprocess.Popen(
        [str(BIN), "media-server", "run"], env=env, cwd=tmp_path, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{http}/_bfl/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the media server did not answer"
            time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", rtmp), timeout=2):
            pass  # RTMP accepts connections (the liveness probe's check)
        assert (tmp_path / "media" / "nginx.conf").is_file()
    finally:
        process.send_signal(signal.SIGTERM)  # nginx: fast shutdown
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode is not None
