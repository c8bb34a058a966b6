"""A stand-in for Twilio's Messages API on loopback (an SMS carrier cannot run here).

It speaks the real wire format: POST /2010-04-01/Accounts/{sid}/Messages.json with HTTP basic
auth and a form body (To, From, Body); 201 with a message resource, or Twilio's error JSON.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.fixtures.services import free_port

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[A-Za-z0-9]+)/Messages\.json$")


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "test-auth-token-" + "x" * 16
    from_number: str = "+15005550006"
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[dict[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                match = _PATH.match(self.path)
                if match is None:
                    self._reply(404, {"code": 20404, "message": "Not Found", "status": 404})
                    return
                expected = base64.b64encode(
                    f"{fake.account_sid}:{fake.auth_token}".encode()
                ).decode()
                if (
                    self.headers.get("Authorization") != f"Basic {expected}"
                    or match["sid"] != fake.account_sid
                ):
                    self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                    return
                if not self.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded"
                ):
                    self._reply(400, {"code": 20001, "message": "Bad body", "status": 400})
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if not form.get("To", "").startswith("+") or not form.get("Body"):
                    self._reply(
                        400,
                        {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400},
                    )
                    return
                fake.messages.append(form)
                self._reply(
                    201,
                    {
                        "sid": "SM" + uuid.uuid4().hex,
                        "account_sid": fake.account_sid,
                        "to": form["To"],
                        "from": form.get("From"),
                        "body": form["Body"],
                        "status": "queued",
                    },
                )

        self.port = free_port()
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def to(self, number: str) -> list[dict[str, str]]:
        return [m for m in self.messages if m["To"] == number]

    def wait_for(self, number: str, count: int = 1, within: float = 5.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if len(self.to(number)) >= count:
                return self.to(number)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} SMS to {number}, got {len(self.to(number))}")
