"""`GET /api/media/authorize`, nginx's auth_request target, as nginx calls it (headers only).

The same decisions through a real nginx: tests/e2e/test_managed_media_server.py and
test_printed_media_config.py."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from bigfootlive.authz.roles import Role
from bigfootlive.streaming.managed import credential

AUTHORIZE = "/api/media/authorize"


async def _token(studio: Any, event: dict[str, Any]) -> str:
    config = await studio.client.get(
        f"/api/streaming/events/{event['id']}/stream", headers=studio.streamer.headers
    )
    return str(config.json()["playback_token"])


def _ask(studio: Any, uri: str, *, key: str | None = None, **headers: str) -> Any:
    sent = {"X-API-Key": key or studio.api_key, "X-Original-URI": uri, **headers}
    return studio.client.get(AUTHORIZE, headers=sent)


async def test_public_event_media_is_open_for_every_path(studio):
    event = await studio.event()
    pb = event["playback_id"]
    for uri in (f"/hls/{pb}.m3u8", f"/hls/{pb}-12.ts", f"/live/{pb}/720p/index.m3u8",
                f"/vod/{event['id']}/master.m3u8"):  # fmt: skip
        answer = await _ask(studio, uri)
        assert answer.status_code == 200, (uri, answer.text)
        assert int(answer.headers["x-accel-expires"]) == 30


async def test_private_and_tenant_media_need_the_events_token(studio):
    for visibility in ("private", "tenant"):
        event = await studio.event(visibility=visibility)
        other = await studio.event(visibility=visibility)
        pb = event["playback_id"]
        token = await _token(studio, event)
        paths = (f"/hls/{pb}.m3u8", f"/hls/{pb}-3.ts", f"/live/{pb}/480p/seg_00001.ts",
                 f"/vod/{event['id']}/720p/index.m3u8")  # fmt: skip
        for uri in paths:
            anonymous = await _ask(studio, uri)
            assert anonymous.status_code == 401, (visibility, uri)
            assert anonymous.json()["error"]["code"] == "playback_token_required"
            wrong = await _ask(studio, uri, **{"X-Playback-Token": await _token(studio, other)})
            assert wrong.status_code == 403
            assert wrong.json()["error"]["code"] == "invalid_playback_token"
            garbage = await _ask(studio, uri, **{"X-Playback-Token": "not-a-jwt"})
            assert garbage.status_code == 403
            by_header = await _ask(studio, uri, **{"X-Playback-Token": token})
            assert by_header.status_code == 200, (visibility, uri, by_header.text)
            # never cached past the token's expiry
            assert 0 < int(by_header.headers["x-accel-expires"]) <= 30
            for cookie in (f"bfl_playback_{pb}", f"bfl_playback_{event['id']}", "bfl_playback"):
                by_cookie = await _ask(studio, uri, Cookie=f"a=b; {cookie}={token}")
                assert by_cookie.status_code == 200, (uri, cookie)
        # another event's cookie name does not count
        stray = await _ask(
            studio, f"/hls/{pb}.m3u8", Cookie=f"bfl_playback_{other['playback_id']}={token}"
        )
        assert stray.status_code == 401


async def test_srs_http_server_layout_behind_nginx_needs_the_token_too(studio):
    # SRS writes `[app]/[stream].m3u8` and `[app]/[stream]-[seq].ts` and serves HTTP-FLV at
    # `[app]/[stream].flv`; nginx in front of it asks for every file (docs/streaming.md)
    event = await studio.event(visibility="private")
    public = await studio.event()
    pb, token = event["playback_id"], await _token(studio, event)
    for uri in (f"/live/{pb}.m3u8", f"/live/{pb}-17.ts", f"/live/{pb}.flv",
                f"/live/{pb}.m3u8?hls_ctx=k3c9x2m1"):  # fmt: skip
        assert (await _ask(studio, uri)).status_code == 401, uri
        allowed = await _ask(studio, uri, **{"X-Playback-Token": token})
        assert allowed.status_code == 200, uri
        open_ = await _ask(studio, uri.replace(pb, public["playback_id"]))
        assert open_.status_code == 200, uri
    for uri in (f"/live/{pb}.mp4", f"/live/{pb}-x.ts", f"/live/{pb}.m3u8.ts"):
        assert (await _ask(studio, uri)).status_code == 403, uri


async def test_an_expired_token_is_refused(studio, state):
    event = await studio.event(visibility="private")
    old, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]),
        playback_id=event["playback_id"],
        viewer_id=None,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3),
    )
    answer = await _ask(studio, f"/hls/{event['playback_id']}.m3u8", **{"X-Playback-Token": old})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "playback_token_expired"


async def test_unknown_media_and_paths_are_refused(studio):
    event = await studio.event()
    for uri in ("/hls/pbdoesnotexist.m3u8", f"/vod/{uuid.uuid4()}/master.m3u8",
                "/etc/passwd", f"/hls/{event['playback_id']}.mp4",
                f"/live/{event['playback_id']}/../../x", ""):  # fmt: skip
        answer = await _ask(studio, uri)
        assert answer.status_code == 403, uri
        assert answer.json()["error"]["code"] == "unknown_media"


async def test_the_caller_must_be_the_media_server(studio, factory, settings):
    event = await studio.event()
    uri = f"/hls/{event['playback_id']}.m3u8"
    no_key = await studio.client.get(AUTHORIZE, headers={"X-Original-URI": uri})
    assert no_key.status_code == 401
    forged = await _ask(studio, uri, key="bfm_" + "0" * 64)
    assert forged.status_code == 401
    # the managed media server's derived credential (platform scope)
    managed = await _ask(studio, uri, key=credential.credential(settings))
    assert managed.status_code == 200
    # a tenant API key answers for its own tenant's events only
    other_admin = await factory.user(await factory.tenant(), role=Role.ADMIN)
    created = await studio.client.post(
        "/api/api-keys", json={"name": "theirs"}, headers=other_admin.headers
    )
    theirs = await _ask(studio, uri, key=created.json()["key"])
    assert theirs.status_code == 403


async def test_the_media_server_credential_works_for_callbacks_and_never_in_a_log(
    studio, settings, caplog
):
    caplog.set_level(logging.INFO)
    event = await studio.event()
    secret = credential.credential(settings)
    answer = await studio.client.post(
        "/api/streaming/hooks/nginx-rtmp",
        data={
            "call": "publish",
            "app": "ingest",
            "name": event["ingest"]["stream_key"],
            "clientid": "7",
            "addr": "127.0.0.1",
        },
        headers={"X-API-Key": secret},
    )
    assert answer.status_code == 302
    assert answer.headers["location"].endswith(f"/live/{event['playback_id']}")
    logged = "\n".join(str(r.msg) for r in caplog.records if r.name.startswith("bigfootlive"))
    assert "media_callback" in logged  # the callback was logged ...
    assert secret not in logged  # ... without the credential
