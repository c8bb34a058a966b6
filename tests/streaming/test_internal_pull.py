"""Our own RTMP pulls (transcoder, recorder) carry a short credential nginx-rtmp passes whole,
which its on_play callback accepts for every visibility, and which never counts as a viewer."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from bigfootlive.config import Settings
from bigfootlive.events.playback import INTERNAL_PULL_FLASHVER, PlaybackTokens
from bigfootlive.streaming.health import parse_nginx_stat
from tests.fixtures.recorded import payload
from tests.streaming.test_nginx_rtmp_callbacks import _call

# nginx-rtmp cuts a play name plus its `?args` at about 256 bytes.
NGINX_RTMP_ARGS_LIMIT = 256


def test_the_pull_credential_is_short_and_bound_to_its_stream(settings: Settings):
    tokens = PlaybackTokens(settings)
    token = tokens.issue_internal_pull("pb_abcdefghijklmnop")
    name = f"pb_abcdefghijklmnop?token={token}"
    assert len(token) < 100
    assert len(name) < NGINX_RTMP_ARGS_LIMIT
    assert tokens.verify_internal_pull(token, "pb_abcdefghijklmnop")
    assert not tokens.verify_internal_pull(token, "pb_other")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert not tokens.verify_internal_pull(tampered, "pb_abcdefghijklmnop")
    other_secret = settings.model_copy(update={"jwt_secret": SecretStr("t" * 48)})
    assert not PlaybackTokens(other_secret).verify_internal_pull(token, "pb_abcdefghijklmnop")


def test_an_expired_pull_credential_opens_nothing_but_keeps_an_open_pull(settings: Settings):
    tokens = PlaybackTokens(settings)
    token = tokens.issue_internal_pull("pb1", ttl=10, now=time.time() - 60)
    assert not tokens.verify_internal_pull(token, "pb1")
    assert tokens.verify_internal_pull(token, "pb1", allow_expired=True)


@pytest.mark.parametrize("visibility", ["tenant", "private", "public"])
async def test_on_play_accepts_our_pull_for_every_visibility(studio, state, visibility):
    event = await studio.event(visibility=visibility)
    await _call(studio, "publish.form", client_id="3", stream_key=event["ingest"]["stream_key"])
    token = state.playback_tokens.issue_internal_pull(event["playback_id"])
    allowed = await _call(
        studio, "play.form", client_id="9", playback_id=event["playback_id"], token=token
    )
    assert allowed.status_code == 200, allowed.text


async def test_on_play_refuses_a_pull_credential_of_another_stream(studio, state):
    event = await studio.event(visibility="private")
    other = await studio.event(visibility="private")
    await _call(studio, "publish.form", client_id="3", stream_key=event["ingest"]["stream_key"])
    token = state.playback_tokens.issue_internal_pull(other["playback_id"])
    refused = await _call(
        studio, "play.form", client_id="9", playback_id=event["playback_id"], token=token
    )
    assert refused.status_code == 403
    assert refused.text == "invalid_pull_credential"


def test_our_pulls_are_not_viewers_in_nginx_stats():
    xml = payload("nginx_rtmp", "stat_while_live.xml", stream_name="pbabc")
    viewer = (
        "<client><id>7</id><address>127.0.0.1</address><time>100</time>"
        "<flashver>LNX 9,0,124,2</flashver><dropped>0</dropped><avsync>0</avsync>"
        "<timestamp>10</timestamp><active/></client>"
    )
    ours = viewer.replace("<id>7</id>", "<id>8</id>").replace(
        "LNX 9,0,124,2", INTERNAL_PULL_FLASHVER
    )
    marker = "<client><id>3</id>"
    with_clients = xml.replace(marker, viewer + ours + marker, 1)
    stats = parse_nginx_stat(with_clients.encode(), "pbabc", now=1000.0)
    assert stats is not None
    assert stats.viewers == 1
