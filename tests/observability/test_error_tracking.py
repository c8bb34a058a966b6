"""Sentry (SENTRY_DSN): an unhandled error in a request reaches a Sentry endpoint with the
request id and without any secret. The endpoint is a local HTTP server started here on
127.0.0.1 that parses what sentry-sdk sends (envelopes, possibly compressed)."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request

from bigfootlive.app import create_app
from bigfootlive.observability.errortracking import init_error_tracking, scrub_event
from tests.conftest import TestSettings, base_settings
from tests.fixtures import services
from tests.fixtures.polling import until


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """(envelope header, [(item header, payload)]) of Sentry's envelope format."""
    header_line, _, rest = body.partition(b"\n")
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item = json.loads(item_line)
        if "length" in item:
            payload, rest = rest[: item["length"]], rest[item["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((item, payload))
    return json.loads(header_line), items


class SentrySink:
    """A Sentry ingestion endpoint on 127.0.0.1: keeps every envelope it is sent."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.events: list[dict[str, Any]] = []
        self.paths: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                encoding = self.headers.get("content-encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                sink.paths.append(self.path)
                sink.raw.append(body)
                _, items = parse_envelope(body)
                for item, payload in items:
                    if item.get("type") == "event":
                        sink.events.append(json.loads(payload))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://publickey123@127.0.0.1:{self.port}/42"


@pytest.fixture
def sink() -> Iterator[SentrySink]:
    server = SentrySink()
    server.thread.start()
    yield server
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)
    server.server.shutdown()
    server.server.server_close()


SECRETS = {
    "password": "Hunter2-correct-horse-battery",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlLXZhbHVl",
    "cookie": "sessioncookievalue0123456789",
    "api_key": "bfk_ApiKeyValue0123456789abcdefABCDEF",
    "stream_key": "sk_StreamKeyValue0123456789abcdef",
    "query_token": "querytokenvalue0123456789",
    "refresh": "refreshtokenvalue0123456789abc",
}


@pytest.fixture
def sentry_settings(
    sink: SentrySink, tmp_path: Path, smtp_sink: services.SMTPSink, sqlite_template: Path
) -> TestSettings:
    db = tmp_path / "bigfootlive.db"
    shutil.copy(sqlite_template, db)
    return TestSettings(
        **base_settings(
            tmp_path,
            smtp_sink,
            database_url=f"sqlite+aiosqlite:///{db}",
            redis_url=None,
            sentry_dsn=sink.dsn,
        )
    )


@pytest.fixture
async def sentry_app(sentry_settings: TestSettings) -> AsyncIterator[FastAPI]:
    app = create_app(sentry_settings, loops=())

    @app.post("/boom/{anything}")
    async def boom(request: Request) -> None:
        body = await request.json()
        password = body["password"]  # a local variable the stack frame shows
        stream_key = body["stream_key"]
        raise RuntimeError(
            f"publish failed for rtmp://ingest/live?key={stream_key} "
            f"(password={password}, key {stream_key})"
        )

    async with LifespanManager(app):
        yield app


async def test_an_unhandled_error_arrives_with_the_request_id_and_no_secret(
    sentry_app: FastAPI, sink: SentrySink
) -> None:
    transport = httpx.ASGITransport(app=sentry_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(
            f"/boom/x?token={SECRETS['query_token']}&page=2",
            json={
                "password": SECRETS["password"],
                "stream_key": SECRETS["stream_key"],
                "refresh_token": SECRETS["refresh"],
                "title": "visible",
            },
            headers={
                "X-Request-ID": "req-sentry-0001",
                "Authorization": f"Bearer {SECRETS['bearer']}",
                "Cookie": f"bfl_session={SECRETS['cookie']}",
                "X-API-Key": SECRETS["api_key"],
            },
        )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    sentry_sdk.flush(timeout=5)
    await until(lambda: sink.events, within=10)

    assert all(path == "/api/42/envelope/" for path in sink.paths)
    event = sink.events[0]
    assert event["tags"]["request_id"] == "req-sentry-0001"
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "RuntimeError"
    assert "publish failed" in exception["value"]
    assert event["request"]["method"] == "POST"
    # nothing secret anywhere in what was sent, in any form
    everything = b"\n".join(sink.raw).decode()
    for name, value in SECRETS.items():
        assert value not in everything, f"{name} reached Sentry"
    assert "[redacted]" in exception["value"] or "[Filtered]" in exception["value"]
    assert len(sink.events) == 1  # the request's error and its log line: one event


def test_without_a_dsn_nothing_is_started(tmp_path: Path, smtp_sink: services.SMTPSink) -> None:
    settings = TestSettings(**base_settings(tmp_path, smtp_sink, sentry_dsn=""))
    assert init_error_tracking(settings) is False
    assert not sentry_sdk.get_client().is_active()


def test_the_scrubber_masks_secret_names_headers_and_values_at_any_depth() -> None:
    event = {
        "request": {
            "headers": {"Authorization": "Bearer x", "Cookie": "a=b", "Accept": "text/html"},
            "cookies": {"a": "b"},
            "query_string": "token=abc&page=2",
            "data": {"user": {"new_password": "pw", "name": "Ann"}},
        },
        "extra": {"pairs": [["X-Api-Key", "bfk_abcdefabcdefabcdefabcd"], ["Accept", "*/*"]]},
        "breadcrumbs": {"values": [{"message": "login with stream key sk_abcdefghijklmnopqrstu"}]},
    }
    scrubbed = scrub_event(event)
    request = scrubbed["request"]
    assert request["headers"] == {
        "Authorization": "[redacted]",
        "Cookie": "[redacted]",
        "Accept": "text/html",
    }
    assert "cookies" not in request
    assert request["query_string"] == "token=[redacted]&page=2"
    assert request["data"] == {"user": {"new_password": "[redacted]", "name": "Ann"}}
    assert scrubbed["extra"]["pairs"] == [["X-Api-Key", "[redacted]"], ["Accept", "*/*"]]
    assert "sk_abc" not in json.dumps(scrubbed)


def test_the_media_hooks_take_the_stack_while_sentry_traces_requests(
    sentry_settings: TestSettings,
) -> None:
    """Sentry's request transactions start in the stack: with tracing on, the media servers'
    hooks and the sign-in are not answered before it (direct_http.DirectHttp); errors alone do not
    need it (they come from the `unhandled_error` log line)."""
    assert create_app(sentry_settings, loops=()).direct_http is not None
    traced = sentry_settings.model_copy(update={"sentry_traces_sample_rate": 0.5})
    assert create_app(traced, loops=()).direct_http is None
