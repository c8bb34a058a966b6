"""Player beacons are served past the HTTP stack (`analytics.endpoints.DirectBeacons` through
`direct_http.DirectHttp`) and answer as the stack does: the same status, body and headers for
what is accepted and for every failure, the request id and the security headers, the metrics
and access line, the body limit, and CORS (a request with an Origin header takes the stack when
the app answers CORS)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from structlog.testing import capture_logs

from bigfootlive import http_errors
from bigfootlive.analytics import service
from bigfootlive.observability import middleware
from bigfootlive.observability.metrics import REGISTRY
from tests.analytics.conftest import live_event
from tests.analytics.test_beacon_buffer import wait_for_figures

ROUTE = "/api/analytics/events/{event_id}/beacons"
JSON = {"content-type": "application/json"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "jobs_inprocess_worker": True,
        "jobs_scheduler": False,
        "analytics_flush_seconds": 3600,
        "analytics_beacon_rate_limit": "1000/minute",
        "analytics_beacon_ip_rate_limit": "1000/minute",
    }


@pytest.fixture
async def stack(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app's HTTP stack alone (FastAPI's own entry: nothing past it)."""
    transport = httpx.ASGITransport(app=functools.partial(FastAPI.__call__, app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def url(event_id: str) -> str:
    return ROUTE.format(event_id=event_id)


def body(viewer: str, n: int = 2) -> bytes:
    beacon = b'{"type": "heartbeat", "watched_ms": 1000}'
    return b'{"viewer_id": "%s", "beacons": [%s]}' % (viewer.encode(), b",".join([beacon] * n))


def _count(status: str) -> float:
    labels = {"method": "POST", "route": ROUTE, "status": status}
    return REGISTRY.get_sample_value("bigfootlive_http_requests_total", labels) or 0.0


def _same(direct: httpx.Response, stacked: httpx.Response) -> None:
    assert direct.status_code == stacked.status_code
    assert direct.content == stacked.content
    assert set(direct.headers.keys()) == set(stacked.headers.keys())
    for name, value in stacked.headers.items():
        if name != "x-request-id":
            assert direct.headers[name] == value, name


async def test_accepted_beacons_answer_past_the_stack_as_the_stack_does(
    factory, client, stack, state, served_directly
):
    _, streamer, event_id = await live_event(factory, client, state)
    served_directly.clear()
    direct = await client.post(url(event_id), content=body("viewer-0001"), headers=JSON)
    stacked = await stack.post(url(event_id), content=body("viewer-0002"), headers=JSON)
    assert direct.status_code == 202, direct.text
    assert direct.json() == {"accepted": 2}
    _same(direct, stacked)
    assert served_directly == [url(event_id)]
    await state.beacons.stop()  # what the lifespan does at shutdown: both are counted
    await wait_for_figures(client, streamer, event_id, watch_seconds=4)


@pytest.mark.parametrize(
    ("path", "content", "headers"),
    [
        (None, b'{"viewer_id": "player-123", "beacons": [', JSON),
        (None, b"", JSON),
        (None, b'{"viewer_id": "player-123", "beacons": [{"type": "start"}]}',
         {"content-type": "text/plain"}),
        (None, b'{"viewer_id": "player-123", "beacons": [{"type": "explode"}]}', JSON),
        (None, body("player-123"), {**JSON, "authorization": "Bearer not-a-token"}),
        ("not-a-uuid", body("player-123"), JSON),
        ("0b7c4b5e-4b8a-4f55-9d55-7d1b6a2f0c11", body("player-123"), JSON),
    ],
    ids=["truncated", "empty", "not-json", "unknown-type", "bad-token", "bad-id", "unknown-id"],
)  # fmt: skip
async def test_failures_are_the_json_errors_of_the_stack(
    factory, client, stack, state, served_directly, path, content, headers
):
    _, _, event_id = await live_event(factory, client, state)
    served_directly.clear()
    target = url(path or event_id)
    direct = await client.post(target, content=content, headers=headers)
    stacked = await stack.post(target, content=content, headers=headers)
    assert 400 <= direct.status_code < 500, direct.text
    assert direct.json()["error"]["message"]
    _same(direct, stacked)
    assert served_directly == [target]


async def test_request_id_metrics_and_access_line(
    factory, client, state, monkeypatch, served_directly
):
    _, _, event_id = await live_event(factory, client, state)
    before = _count("202")
    with capture_logs() as logs:
        # a logger not yet used (a used one is cached, out of capture_logs' reach)
        monkeypatch.setattr(middleware, "log", structlog.get_logger("bigfootlive.access"))
        response = await client.post(
            url(event_id), content=body("viewer-0001"), headers={**JSON, "X-Request-ID": "p-7"}
        )
    assert response.status_code == 202
    assert response.headers["x-request-id"] == "p-7"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert _count("202") == before + 1
    access = [e for e in logs if e["event"] == "request"]
    assert [(e["route"], e["status"], e["method"]) for e in access] == [(ROUTE, 202, "POST")]
    assert served_directly[-1] == url(event_id)


async def test_a_body_over_the_limit_is_413_past_the_stack(
    factory, client, state, settings, served_directly
):
    _, _, event_id = await live_event(factory, client, state)
    served_directly.clear()
    declared = await client.post(
        url(event_id), content=b"[" + b" " * settings.max_body_bytes, headers=JSON
    )

    async def chunks():
        for _ in range(3):
            yield b" " * settings.max_body_bytes

    streamed = await client.post(url(event_id), content=chunks(), headers=JSON)
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
        assert "x-request-id" in response.headers
    assert served_directly == [url(event_id)] * 2


async def test_a_bug_is_the_stacks_500(app, factory, client, state, monkeypatch, served_directly):
    _, _, event_id = await live_event(factory, client, state)
    served_directly.clear()

    async def bug(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "ingest_beacons", bug)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        with capture_logs() as logs:
            monkeypatch.setattr(http_errors, "log", structlog.get_logger(http_errors.__name__))
            broken = await http.post(url(event_id), content=body("viewer-0001"), headers=JSON)
    assert broken.status_code == 500
    assert broken.json()["error"]["code"] == "internal_error"
    assert any(e["event"] == "unhandled_error" for e in logs)
    assert served_directly == [url(event_id)]


async def test_other_methods_and_paths_take_the_stack(factory, client, state, served_directly):
    _, _, event_id = await live_event(factory, client, state)
    served_directly.clear()
    assert (await client.get(url(event_id))).status_code == 405
    slash = await client.post(url(event_id) + "/", content=body("viewer-0001"), headers=JSON)
    nested = await client.post(url(f"{event_id}/x"), content=body("viewer-0001"), headers=JSON)
    assert slash.status_code in (307, 404)
    assert nested.status_code == 404
    assert served_directly == []


async def test_an_origin_is_served_directly_unless_the_app_answers_cors(
    factory, client, state, served_directly
):
    _, _, event_id = await live_event(factory, client, state)
    served_directly.clear()
    response = await client.post(
        url(event_id), content=body("viewer-0001"), headers={**JSON, "origin": "https://a.example"}
    )
    assert response.status_code == 202
    assert "access-control-allow-origin" not in response.headers
    assert served_directly == [url(event_id)]


class TestWithCors:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"cors_origins": ["https://player.example"], "analytics_flush_seconds": 3600}

    async def test_an_origin_takes_the_stack(self, factory, client, state, served_directly):
        _, _, event_id = await live_event(factory, client, state)
        served_directly.clear()
        cors = await client.post(
            url(event_id), content=body("viewer-0001"),
            headers={**JSON, "origin": "https://player.example"},
        )  # fmt: skip
        assert cors.status_code == 202, cors.text
        assert cors.headers["access-control-allow-origin"] == "https://player.example"
        assert served_directly == []
        plain = await client.post(url(event_id), content=body("viewer-0002"), headers=JSON)
        assert plain.status_code == 202
        assert served_directly == [url(event_id)]
