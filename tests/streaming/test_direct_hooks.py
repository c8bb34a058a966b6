"""The media servers' hooks are served past the HTTP stack (`direct_http.DirectHttp`)
and answer as the stack did: the same status, body and headers, the request id and the security
headers, the metrics and access line, the body limit, and every failure's JSON body."""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from bigfootlive import http_errors
from bigfootlive.events import lifecycle
from bigfootlive.observability import middleware
from bigfootlive.observability.metrics import REGISTRY
from bigfootlive.streaming import service
from tests.fixtures.recorded import payload

HOOK = "/api/streaming/hooks/nginx-rtmp"
FORM = {"content-type": "application/x-www-form-urlencoded"}
# An Origin header sends the request through the whole stack (CORS applies to it).
THE_STACK = {"origin": "http://media.example"}


async def _publish(studio, key: str, client_id: str, **headers: str) -> httpx.Response:
    body = payload("nginx_rtmp", "publish.form", client_id=client_id, stream_key=key)
    return await studio.client.post(
        HOOK, content=body, headers={**studio.hook_headers, **FORM, **headers}
    )


def _shape(response: httpx.Response) -> tuple[int, bytes, set[str]]:
    return response.status_code, response.content, set(response.headers.keys())


def _count(route: str, status: str) -> float:
    labels = {"method": "POST", "route": route, "status": status}
    return REGISTRY.get_sample_value("bigfootlive_http_requests_total", labels) or 0.0


async def test_a_hook_answers_past_the_stack_as_the_stack_does(studio, served_directly):
    first, second = await studio.event(), await studio.event()

    direct = await _publish(studio, first["ingest"]["stream_key"], "c1")
    assert served_directly == [HOOK]
    stacked = await _publish(studio, second["ingest"]["stream_key"], "c2", **THE_STACK)
    assert served_directly == [HOOK]  # the Origin header took the stack

    assert direct.status_code == stacked.status_code == 302
    assert direct.headers["location"].endswith(first["playback_id"])
    assert {k for k in stacked.headers if not k.startswith("access-control-")} == set(
        direct.headers.keys()
    )
    for name in ("x-content-type-options", "content-security-policy", "content-type"):
        assert direct.headers[name] == stacked.headers[name]
    assert direct.headers["content-length"] == "0"
    # a retry, and a refusal, past the stack too
    retry = await _publish(studio, first["ingest"]["stream_key"], "c1")
    refused = await _publish(studio, "sk_nope", "c9")
    refused_stacked = await _publish(studio, "sk_nope", "c9", **THE_STACK)
    assert retry.status_code == 302
    assert _shape(refused)[:2] == _shape(refused_stacked)[:2] == (403, b"unknown_stream")
    assert served_directly == [HOOK] * 3


async def test_request_id_metrics_and_access_line(studio, served_directly, monkeypatch):
    event = await studio.event()
    before = _count(HOOK, "302")
    with capture_logs() as logs:
        # a logger not yet used (a used one is cached, out of capture_logs' reach)
        monkeypatch.setattr(middleware, "log", structlog.get_logger("bigfootlive.access"))
        monkeypatch.setattr(service, "log", structlog.get_logger(service.__name__))
        monkeypatch.setattr(lifecycle, "log", structlog.get_logger(lifecycle.__name__))
        response = await _publish(
            studio, event["ingest"]["stream_key"], "c1", **{"X-Request-ID": "media-42"}
        )
    assert served_directly == [HOOK]
    assert response.headers["x-request-id"] == "media-42"
    assert _count(HOOK, "302") == before + 1
    access = [e for e in logs if e["event"] == "request"]
    assert [(e["route"], e["status"], e["method"]) for e in access] == [(HOOK, 302, "POST")]
    decided = [e for e in logs if e["event"] == "media_callback"]
    assert [e["allowed"] for e in decided] == [True]
    # one line for the decision, which is also the stream's start: whose event, what changed
    (line,) = decided
    assert (line["tenant_id"], line["event_id"]) == (event["tenant_id"], event["id"])
    assert (line["status"], line["previous"]) == ("live", "ready")
    assert [e["event"] for e in logs] == ["media_callback", "request"]


async def test_failures_are_the_json_errors_of_the_stack(studio, served_directly):
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    for extra in ({}, THE_STACK):
        no_key = await studio.client.post(
            HOOK, content=payload("nginx_rtmp", "publish.form", client_id="c", stream_key=key),
            headers={**FORM, **extra},
        )  # fmt: skip
        assert no_key.status_code == 401
        assert no_key.json()["error"]["code"]
        assert "x-request-id" in no_key.headers
        bad = await studio.client.post(
            HOOK, content=b"call=publish", headers={**studio.hook_headers, **FORM, **extra}
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "bad_callback"
    assert served_directly == [HOOK, HOOK]
    assert await studio.status(event) == "ready"


async def test_a_body_over_the_limit_is_413_past_the_stack(studio, settings, served_directly):
    too_big = b"call=publish&name=" + b"x" * settings.max_body_bytes
    declared = await studio.client.post(
        HOOK, content=too_big, headers={**studio.hook_headers, **FORM}
    )

    async def chunks():
        for _ in range(3):
            yield b"x" * settings.max_body_bytes

    streamed = await studio.client.post(
        HOOK, content=chunks(), headers={**studio.hook_headers, **FORM}
    )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
        assert "x-request-id" in response.headers
    assert served_directly == [HOOK, HOOK]


async def test_a_dependency_down_is_503_and_a_bug_500(app, studio, monkeypatch, served_directly):
    event = await studio.event()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        studio.client = client

        async def cache_down(*_: Any, **__: Any) -> Any:
            raise RedisConnectionError("down")

        monkeypatch.setattr(service, "decide", cache_down)
        down = await _publish(studio, event["ingest"]["stream_key"], "c1")
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "cache_unavailable"
        assert down.headers["retry-after"] == "1"

        async def bug(*_: Any, **__: Any) -> Any:
            raise RuntimeError("a bug")

        monkeypatch.setattr(service, "decide", bug)
        with capture_logs() as logs:
            monkeypatch.setattr(http_errors, "log", structlog.get_logger(http_errors.__name__))
            broken = await _publish(studio, event["ingest"]["stream_key"], "c1")
        assert broken.status_code == 500
        assert broken.json()["error"]["code"] == "internal_error"
        assert any(e["event"] == "unhandled_error" for e in logs)
    assert served_directly == [HOOK, HOOK]


async def test_other_methods_and_paths_take_the_stack(studio, served_directly):
    assert (await studio.client.get(HOOK, headers=studio.hook_headers)).status_code == 405
    near = await studio.client.post(f"{HOOK}/x", headers={**studio.hook_headers, **FORM})
    assert near.status_code == 404
    assert served_directly == []
