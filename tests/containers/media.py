"""Real media servers for the transcoder tests: nginx-rtmp and an ffmpeg publisher, an
S3-compatible server (moto in server mode). All on free loopback ports, stopped by pid."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures import services

NGINX_CONF = """
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process on;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/logs/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
        }}
    }}
}}
http {{
    access_log {base}/logs/access.log;
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location /stat {{ rtmp_stat all; }}
    }}
}}
"""


def tools_available() -> bool:
    return (
        all(shutil.which(t) for t in ("nginx", "ffmpeg", "ffprobe"))
        and Path("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists()
    )


@dataclass
class RtmpServer:
    base: Path
    rtmp_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def stat_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/stat"

    def url(self, name: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{name}"

    def start(self) -> None:
        for sub in ("logs", "tmp"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        conf = self.base / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(base=self.base, rtmp_port=self.rtmp_port, http_port=self.http_port)
        )
        args = ["nginx", "-p", str(self.base), "-e", str(self.base / "logs/error.log")]
        self.process = subprocess.Popen([*args, "-c", str(conf)])
        wait_port(self.rtmp_port)
        wait_port(self.http_port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


def wait_port(port: int, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if services.port_open("127.0.0.1", port):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def publish(url: str, seconds: float) -> subprocess.Popen[bytes]:
    """A synthetic 640x360 stream with a tone, like an encoder would send."""
    return subprocess.Popen(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune",
            "zerolatency", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
            "-f", "flv", url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def probe(target: str) -> dict[str, object]:
    import json

    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-show_entries",
            "program=program_id:stream=codec_type,codec_name,width,height:format=duration",
            "-of", "json", target,
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


class S3Server:
    """moto's S3 in server mode: a real HTTP S3 API on loopback."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = services.free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server.start()
        wait_port(self.port)

    def stop(self) -> None:
        self.server.stop()

    @classmethod
    @contextlib.contextmanager
    def serving_bucket(cls, bucket: str) -> Iterator[S3Server]:
        """A started server holding one empty bucket; stopped on exit."""
        import boto3

        server = cls()
        server.start()
        try:
            boto3.client(
                "s3",
                endpoint_url=server.url,
                region_name="us-east-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
            ).create_bucket(Bucket=bucket)
            yield server
        finally:
            server.stop()
