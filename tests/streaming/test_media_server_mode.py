"""MEDIA_SERVER_MODE: which mode `bigfootlive serve` runs in, and what `/ready` says of it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from bigfootlive.app import create_app
from bigfootlive.config import Settings
from bigfootlive.serving import uvicorn_options
from bigfootlive.streaming.managed.nginx_conf import LayoutError, MediaLayout
from bigfootlive.streaming.managed.runner import resolve
from tests.fixtures import nginx_rtmp, services

BIN = Path(sys.executable).parent / "bigfootlive"
MISSING = "/nonexistent/sbin/nginx"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_auto_is_managed_where_nginx_rtmp_is_installed():
    services.require(nginx_rtmp.available(), "nginx with libnginx-mod-rtmp")
    assert resolve(_settings()).mode == "managed"  # NODE_ENV=development, as `make run`
    assert resolve(_settings(node_env="test")).mode == "none"  # test servers run side by side
    assert resolve(_settings(node_env="test", media_server_mode="managed")).mode == "managed"


def test_auto_is_external_in_production_and_for_other_media_servers():
    jwt = "k9#Qv2!zLp7@Xw4$Rt8^Yb3&Nm6*Hc1(Fd5)Gs0"
    production = _settings(node_env="production", jwt_secret=jwt)
    assert resolve(production).mode == "external"
    assert "MEDIA_SERVER_MODE=managed" in resolve(production).reason
    assert resolve(_settings(media_server="srs")).mode == "external"
    assert resolve(_settings(media_server_mode="none")).mode == "none"


def test_auto_without_nginx_is_none_and_says_what_to_install():
    resolved = resolve(_settings(nginx_binary=MISSING))
    assert resolved.mode == "none"
    assert "libnginx-mod-rtmp" in resolved.reason
    missing_module = _settings(nginx_rtmp_module="/nonexistent/ngx_rtmp_module.so")
    assert resolve(missing_module).mode == "none"


def test_an_impossible_explicit_managed_mode_is_refused():
    with pytest.raises(LayoutError, match="libnginx-mod-rtmp"):
        resolve(_settings(media_server_mode="managed", nginx_binary=MISSING))
    with pytest.raises(LayoutError, match="MEDIA_SERVER=nginx-rtmp"):
        resolve(_settings(media_server_mode="managed", media_server="mediamtx"))


def test_serve_refuses_to_start_an_impossible_managed_mode(tmp_path):
    done = subprocess.run(
        [str(BIN), "serve"],
        env={"PATH": "/usr/bin:/bin", "MEDIA_SERVER_MODE": "managed", "NGINX_BINARY": MISSING,
             "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "the media server cannot start" in done.stderr
    assert "libnginx-mod-rtmp" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_configuration_carries_no_credential_in_a_url(tmp_path):
    layout = MediaLayout.from_settings(
        _settings(media_runtime_dir=str(tmp_path / "run"), recordings_dir=str(tmp_path / "m"))
    )
    text = layout.render()
    assert "api_key" not in text
    assert text.count(layout.credential) == 2  # two proxy_set_header X-API-Key lines
    for line in text.splitlines():
        if layout.credential in line:
            assert line.strip().startswith("proxy_set_header X-API-Key")
    with pytest.raises(LayoutError, match="MEDIA_RUNTIME_DIR"):
        MediaLayout.from_settings(_settings(media_runtime_dir="/srv/x;y")).render()


async def _ready(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/ready")


async def test_ready_says_why_there_is_no_media_server(settings):
    answer = await _ready(
        settings.model_copy(update={"media_server_mode": "none", "nginx_binary": MISSING})
    )
    assert answer.status_code == 200
    body = answer.json()
    assert "media_server" not in body["checks"]
    assert body["media_server"]["mode"] == "none"
    assert "libnginx-mod-rtmp" in body["media_server"]["status"]


async def test_ready_is_503_when_the_managed_media_server_does_not_answer(settings):
    port = services.free_port()  # nothing listens there
    answer = await _ready(
        settings.model_copy(update={"media_server_mode": "managed", "media_http_port": port})
    )
    assert answer.status_code == 503
    assert answer.json()["checks"]["media_server"].startswith("error")


def test_managed_defaults_point_at_the_origin_unless_the_operator_chose():
    from bigfootlive.streaming.managed.runner import _defaults

    chosen = _defaults(_settings(media_http_port=18080, rtmp_ingest_host="live.example.org"))
    assert chosen["CDN_BASE_URL"] == "http://live.example.org:18080"
    assert chosen["NGINX_RTMP_STAT_URL"] == "http://127.0.0.1:18080/stat"
    assert chosen["NGINX_RTMP_HLS_PATH"].endswith("/hls")
    own = _defaults(
        _settings(cdn_base_url="https://cdn.example.org", nginx_rtmp_stat_url="http://n/stat")
    )
    assert "CDN_BASE_URL" not in own
    assert "NGINX_RTMP_STAT_URL" not in own


def test_nginx_closes_idle_api_connections_before_uvicorn_does(tmp_path):
    """nginx reused an upstream connection uvicorn had just closed (its keep-alive timeout) and
    the on_update sent on it was reset: nginx-rtmp took that as a refusal and dropped a live
    publisher. nginx must give up idle connections first."""
    text = MediaLayout.from_settings(
        _settings(media_runtime_dir=str(tmp_path / "run"), recordings_dir=str(tmp_path / "m"))
    ).render()
    upstream = text.split("upstream bfl_api {", 1)[1].split("}", 1)[0]
    found = re.search(r"keepalive_timeout (\d+)s;", upstream)
    assert found is not None, upstream
    served = uvicorn.Config(app=None, **uvicorn_options())  # as `bigfootlive serve` runs
    assert int(found.group(1)) < served.timeout_keep_alive
