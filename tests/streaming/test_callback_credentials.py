"""The callback API key is accepted in headers (kept out of URLs media servers log); the
`?api_key=` form keeps working for media servers that cannot send one."""

from __future__ import annotations

import base64

import httpx

from tests.fixtures.recorded import payload

HOOK = "/api/streaming/hooks/mediamtx"


async def _publish(studio, headers, *, params=None):
    event = await studio.event()
    response = await studio.client.post(
        HOOK,
        content=payload(
            "mediamtx",
            "publish.json",
            client_id="c1",
            playback_id=event["playback_id"],
            stream_key=event["ingest"]["stream_key"],
        ),
        headers={**headers, "content-type": "application/json"},
        params=params,
    )
    return response, event


def _basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def test_x_api_key_header(studio):
    response, event = await _publish(studio, {"X-API-Key": studio.api_key})
    assert response.status_code == 200
    assert await studio.status(event) == "live"


async def test_bearer_header(studio):
    response, event = await _publish(studio, {"Authorization": f"Bearer {studio.api_key}"})
    assert response.status_code == 200
    assert await studio.status(event) == "live"


async def test_basic_auth_with_the_key_as_password(studio):
    response, event = await _publish(studio, _basic("mediamtx", studio.api_key))
    assert response.status_code == 200
    assert await studio.status(event) == "live"


async def test_url_userinfo_is_sent_as_basic_auth_by_an_http_client(studio):
    """What a media server's HTTP client does with `http://media:<key>@api/...`."""
    transport = studio.client._transport
    base = str(studio.client.base_url).replace("://", f"://media:{studio.api_key}@", 1)
    event = await studio.event()
    async with httpx.AsyncClient(transport=transport, base_url=base) as media_server:
        response = await media_server.post(
            HOOK,
            content=payload(
                "mediamtx",
                "publish.json",
                client_id="c1",
                playback_id=event["playback_id"],
                stream_key=event["ingest"]["stream_key"],
            ),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 200
    assert await studio.status(event) == "live"


async def test_query_form_still_works(studio):
    response, event = await _publish(studio, {}, params={"api_key": studio.api_key})
    assert response.status_code == 200
    assert await studio.status(event) == "live"


async def test_wrong_or_malformed_credentials_are_401(studio):
    for headers in (
        {"Authorization": "Bearer bfk_nope"},
        _basic("mediamtx", "bfk_nope"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()},
        {"Authorization": "Digest whatever"},
        {},
    ):
        response, event = await _publish(studio, headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"]
        assert await studio.status(event) == "ready"
