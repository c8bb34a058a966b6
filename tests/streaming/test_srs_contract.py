"""SRS http_hooks, from its documented request bodies; SRS allows only on 200 + body `0`."""

from __future__ import annotations

import uuid

from tests.streaming.conftest import SRS_HOOK


def _allowed(response) -> bool:
    return response.status_code == 200 and response.text == "0"


async def test_on_publish_with_the_events_key_makes_it_live(studio):
    event = await studio.event()
    response = await studio.srs(
        "on_publish.json",
        client_id="c1",
        playback_id=event["playback_id"],
        stream_key=event["ingest"]["stream_key"],
    )
    assert _allowed(response)
    assert await studio.status(event) == "live"


async def test_on_publish_with_a_key_of_another_events_path_is_denied(studio):
    event = await studio.event()
    other = await studio.event()
    response = await studio.srs(
        "on_publish.json",
        client_id="c1",
        playback_id=other["playback_id"],
        stream_key=event["ingest"]["stream_key"],
    )
    assert response.status_code == 403
    assert response.json()["code"] != 0
    assert await studio.status(event) == "ready"


async def test_second_publisher_is_refused(studio):
    event = await studio.event()
    values = {"playback_id": event["playback_id"], "stream_key": event["ingest"]["stream_key"]}
    assert _allowed(await studio.srs("on_publish.json", client_id="c1", **values))
    second = await studio.srs("on_publish.json", client_id="c2", **values)
    assert second.status_code == 403
    assert second.json()["msg"] == "publisher_already_connected"


async def test_repeated_on_publish_and_on_unpublish_are_idempotent(studio):
    event = await studio.event()
    values = {"playback_id": event["playback_id"], "stream_key": event["ingest"]["stream_key"]}
    assert _allowed(await studio.srs("on_publish.json", client_id="c1", **values))
    assert _allowed(await studio.srs("on_publish.json", client_id="c1", **values))
    assert _allowed(await studio.srs("on_unpublish.json", client_id="c1", **values))
    assert _allowed(await studio.srs("on_unpublish.json", client_id="c1", **values))
    assert await studio.status(event) == "reconnecting"
    version = (
        await studio.client.get(f"/api/events/{event['id']}", headers=studio.streamer.headers)
    ).json()["version"]
    assert version == 4  # created, started, live, reconnecting: nothing counted twice


async def test_unpublish_that_overtakes_its_publish_wins(studio):
    event = await studio.event()
    values = {"playback_id": event["playback_id"], "stream_key": event["ingest"]["stream_key"]}
    assert _allowed(await studio.srs("on_unpublish.json", client_id="c9", **values))
    late = await studio.srs("on_publish.json", client_id="c9", **values)
    assert late.status_code == 403
    assert await studio.status(event) == "ready"
    # a new connection of the same encoder is welcome
    assert _allowed(await studio.srs("on_publish.json", client_id="c10", **values))


async def test_keys_of_ended_and_cancelled_events_are_refused(studio):
    ended = await studio.event()
    await studio.client.post(f"/api/events/{ended['id']}/stop", headers=studio.streamer.headers)
    cancelled = await studio.event(start=False)
    await studio.client.delete(f"/api/events/{cancelled['id']}", headers=studio.streamer.headers)
    for event in (ended, cancelled):
        response = await studio.srs(
            "on_publish.json",
            client_id="c1",
            playback_id=event["playback_id"],
            stream_key=event["ingest"]["stream_key"],
        )
        assert response.status_code == 403
        assert response.json()["msg"] == "event_finished"


async def test_key_of_a_scheduled_event_is_refused_until_started(studio):
    event = await studio.event(start=False)
    values = {"playback_id": event["playback_id"], "stream_key": event["ingest"]["stream_key"]}
    refused = await studio.srs("on_publish.json", client_id="c1", **values)
    assert refused.status_code == 403
    assert refused.json()["msg"] == "event_not_started"
    await studio.client.post(f"/api/events/{event['id']}/start", headers=studio.streamer.headers)
    assert _allowed(await studio.srs("on_publish.json", client_id="c1", **values))


async def test_on_play_of_a_public_event_needs_no_token(studio):
    event = await studio.live_event()
    response = await studio.srs(
        "on_play.json", client_id="v1", playback_id=event["playback_id"], token=""
    )
    assert _allowed(response)


async def test_on_play_of_a_private_event_needs_a_valid_token(studio, state):
    event = await studio.live_event(visibility="private")
    pb = event["playback_id"]
    missing = await studio.srs("on_play.json", client_id="v1", playback_id=pb, token="")
    assert missing.status_code == 403
    assert missing.json()["msg"] == "playback_token_required"
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]), playback_id=pb, viewer_id=None
    )
    assert _allowed(await studio.srs("on_play.json", client_id="v1", playback_id=pb, token=token))
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    bad = await studio.srs("on_play.json", client_id="v1", playback_id=pb, token=forged)
    assert bad.status_code == 403


async def test_on_play_token_of_another_event_is_refused(studio, state):
    event = await studio.live_event(visibility="tenant")
    other = await studio.event(visibility="tenant")
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(other["id"]), playback_id=other["playback_id"], viewer_id=None
    )
    response = await studio.srs(
        "on_play.json", client_id="v1", playback_id=event["playback_id"], token=token
    )
    assert response.status_code == 403


async def test_on_play_of_an_expired_token_is_refused(studio, state):
    import datetime as dt

    event = await studio.live_event(visibility="private")
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]),
        playback_id=event["playback_id"],
        viewer_id=None,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        ttl=10,
    )
    response = await studio.srs(
        "on_play.json", client_id="v1", playback_id=event["playback_id"], token=token
    )
    assert response.status_code == 403
    assert response.json()["msg"] == "playback_token_expired"


async def test_on_stop_on_hls_and_on_dvr_are_acknowledged(studio):
    event = await studio.live_event()
    values = {
        "client_id": "pub",
        "playback_id": event["playback_id"],
        "stream_key": event["ingest"]["stream_key"],
        "token": "",
    }
    for name in ("on_stop.json", "on_hls.json", "on_dvr.json"):
        assert _allowed(await studio.srs(name, **values)), name
    assert await studio.status(event) == "live"


async def test_unknown_action_is_400(studio):
    response = await studio.client.post(
        SRS_HOOK, json={"action": "on_teleport", "client_id": "x"}, headers=studio.hook_headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_callback"


async def test_simultaneous_publishers_race_and_exactly_one_wins(studio):
    import asyncio

    event = await studio.event()
    values = {"playback_id": event["playback_id"], "stream_key": event["ingest"]["stream_key"]}
    responses = await asyncio.gather(
        *(studio.srs("on_publish.json", client_id=f"c{i}", **values) for i in range(6))
    )
    assert sum(_allowed(r) for r in responses) == 1, [r.text for r in responses]
    assert await studio.status(event) == "live"


async def test_a_stale_cache_snapshot_does_not_refuse_a_legitimate_reconnect(studio, state):
    from bigfootlive.events import keys, lifecycle

    event = await studio.event()
    values = {"playback_id": event["playback_id"], "stream_key": event["ingest"]["stream_key"]}
    assert _allowed(await studio.srs("on_publish.json", client_id="c1", **values))
    stale = await lifecycle.event_cache(state).ref(uuid.UUID(event["id"]))
    assert _allowed(await studio.srs("on_unpublish.json", client_id="c1", **values))
    # as if the process that committed `reconnecting` died before writing the cache
    await lifecycle.event_cache(state).cache.set(
        f"events:key:{keys.stream_key_hashes(state.settings, values['stream_key'])[0]}",
        stale.dumps(),
    )
    assert _allowed(await studio.srs("on_publish.json", client_id="c2", **values))
    assert await studio.status(event) == "live"


async def test_hls_on_play_names_the_playlist_file_and_needs_the_token(studio, state):
    # SRS 5+ with hls_ctx: on_play for the first playlist request of a session, `stream` being
    # the file name with its extension, `param` the playlist URL's query
    event = await studio.live_event(visibility="tenant")
    pb = event["playback_id"]
    values = {"client_id": "k3c9x2m1", "playback_id": pb}
    missing = await studio.srs("on_play_hls.json", token="", **values)
    assert missing.status_code == 403
    assert missing.json()["msg"] == "playback_token_required"
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]), playback_id=pb, viewer_id=None
    )
    assert _allowed(await studio.srs("on_play_hls.json", token=token, **values))
