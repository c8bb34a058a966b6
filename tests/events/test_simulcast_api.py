"""Simulcast destinations through the API: templates, validation, keys never returned, the
per-tenant limit, and who may manage them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from bigfootlive.authz.roles import Role
from bigfootlive.containers.simulcast import Restreamer, simulcast_channel
from bigfootlive.events import simulcast
from bigfootlive.events.simulcast_schemas import DestinationState
from bigfootlive.models import SimulcastDestination
from tests.fixtures.polling import until

KEY = "yt-live-key-abcd-1234-SECRET"


@pytest.fixture
async def world(factory, client):
    acme = await factory.tenant()
    other = await factory.tenant()
    owner = await factory.user(acme, role=Role.STREAMER)
    created = await client.post("/api/events", json={"title": "Show"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    return {
        "owner": owner,
        "event": created.json(),
        "viewer": await factory.user(acme, role=Role.VIEWER),
        "outsider": await factory.user(other, role=Role.ADMIN),
    }


def _url(world):
    return f"/api/events/{world['event']['id']}/simulcast"


async def test_create_from_template_stores_key_encrypted_and_never_returns_it(client, state, world):
    owner = world["owner"]
    answer = await client.post(
        _url(world), json={"platform": "youtube", "stream_key": KEY}, headers=owner.headers
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["url"] == "rtmp://a.rtmp.youtube.com/live2"
    assert body["name"] == "youtube"
    assert body["state"] == "idle"
    assert body["stream_key_hint"] == "…CRET"
    assert KEY not in answer.text

    listed = await client.get(_url(world), headers=owner.headers)
    assert listed.status_code == 200
    assert [d["id"] for d in listed.json()] == [body["id"]]
    assert KEY not in listed.text

    async with state.db.transaction() as session:
        row = (await session.execute(select(SimulcastDestination))).scalar_one()
    assert KEY not in row.key_ciphertext
    assert simulcast.stream_key_of(state.secrets, row) == KEY
    assert simulcast.push_url(row, KEY) == f"rtmp://a.rtmp.youtube.com/live2/{KEY}"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"platform": "custom", "stream_key": "k"}, "invalid_destination_url"),
        ({"platform": "custom", "url": "http://x.example/app", "stream_key": "k"},
         "invalid_destination_url"),
        ({"platform": "custom", "url": "rtmp:///app", "stream_key": "k"},
         "invalid_destination_url"),
        ({"platform": "custom", "url": "rtmp://u:p@x.example/app", "stream_key": "k"},
         "invalid_destination_url"),
        ({"platform": "custom", "url": "rtmp://x.example:99999/app", "stream_key": "k"},
         "invalid_destination_url"),
        ({"platform": "custom", "url": "rtmp://x.example/a\u0001", "stream_key": "k"},
         "invalid_destination_url"),
        ({"platform": "twitch", "stream_key": "two words"}, "invalid_stream_key"),
        ({"platform": "twitch", "stream_key": "k\n"}, "invalid_stream_key"),
        ({"platform": "myspace", "stream_key": "k"}, "validation_error"),
        ({"platform": "twitch"}, "validation_error"),
        ({"platform": "twitch", "stream_key": ""}, "validation_error"),
        ({"platform": "twitch", "stream_key": "k", "extra": 1}, "validation_error"),
    ],
)  # fmt: skip
async def test_bad_destinations_are_refused_with_a_json_error(client, world, payload, code):
    answer = await client.post(_url(world), json=payload, headers=world["owner"].headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code


async def test_custom_rtmps_update_and_delete(client, world):
    headers = world["owner"].headers
    created = await client.post(
        _url(world),
        json={"platform": "custom", "name": "Backup", "url": "rtmps://ingest.example:443/app/",
              "stream_key": "first-key-0001"},
        headers=headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["url"] == "rtmps://ingest.example:443/app"
    item = f"{_url(world)}/{created.json()['id']}"

    changed = await client.patch(
        item, json={"stream_key": "second-key-0002", "enabled": False}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["stream_key_hint"] == "…0002"
    assert changed.json()["enabled"] is False
    assert "second-key" not in changed.text

    bad = await client.patch(item, json={"url": "srt://x.example"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_destination_url"

    assert (await client.delete(item, headers=headers)).status_code == 204
    gone = await client.delete(item, headers=headers)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "destination_not_found"


async def test_per_tenant_limit(client, world, settings):
    settings.simulcast_max_destinations = 2
    headers = world["owner"].headers
    for i in range(2):
        ok = await client.post(
            _url(world), json={"platform": "twitch", "stream_key": f"k{i}"}, headers=headers
        )
        assert ok.status_code == 201, ok.text
    refused = await client.post(
        _url(world), json={"platform": "twitch", "stream_key": "k3"}, headers=headers
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "simulcast_limit_reached"
    assert refused.json()["error"]["limit"] == 2


async def test_only_managers_and_only_in_the_tenant(client, world):
    body = {"platform": "twitch", "stream_key": "k"}
    viewer = await client.post(_url(world), json=body, headers=world["viewer"].headers)
    assert viewer.status_code in (403, 404)
    outsider = await client.get(_url(world), headers=world["outsider"].headers)
    assert outsider.status_code == 404
    anonymous = await client.get(_url(world))
    assert anonymous.status_code == 401
    unknown = await client.get(
        f"/api/events/{uuid.uuid4()}/simulcast", headers=world["owner"].headers
    )
    assert unknown.status_code == 404


async def test_the_containers_state_reports_show_in_the_api_and_on_pubsub(client, state, world):
    headers = world["owner"].headers
    created = await client.post(
        _url(world), json={"platform": "twitch", "stream_key": KEY}, headers=headers
    )
    event_id = uuid.UUID(world["event"]["id"])
    seen: list[bytes] = []

    async def on_message(payload: bytes) -> None:
        seen.append(payload)

    unsubscribe = await state.pubsub.subscribe(simulcast_channel(event_id), on_message)
    try:
        restreamer = Restreamer(
            state, uuid.UUID(world["event"]["tenant_id"]), event_id, lambda: "rtmp://x/live/pb"
        )
        destination_id = uuid.UUID(created.json()["id"])
        await restreamer._report(destination_id, DestinationState.RETRYING, "refused", 2)
        await until(lambda: len(seen) == 1)
    finally:
        await unsubscribe()
    listed = (await client.get(_url(world), headers=headers)).json()
    assert listed[0]["state"] == "retrying"
    assert listed[0]["state_reason"] == "refused"
    assert listed[0]["attempts"] == 2
    assert listed[0]["state_changed_at"] is not None
    assert b'"state": "retrying"' in seen[0]
    assert KEY.encode() not in seen[0]
