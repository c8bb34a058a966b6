"""Every moderation action over the gateway, with its audit record and its effect on viewers."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from bigfootlive.models import AuditRecord
from tests.realtime.conftest import connect, create_event, join


async def _audit(state, action: str) -> list[AuditRecord]:
    async with state.db.sessionmaker() as session:
        rows = await session.execute(select(AuditRecord).where(AuditRecord.action == action))
        return list(rows.scalars())


async def _room(client, world, live_server, **fields):
    event = await create_event(client, world["owner"], **fields)
    url = live_server.url(event["id"])
    return event, url


async def test_author_deletes_own_message_and_viewers_are_told(client, world, live_server):
    event, url = await _room(client, world, live_server)
    author = await join(url, world["viewer"])
    watcher = await join(url, world["viewer2"])
    sent = await author.say("oops")
    assert (await author.request(type="delete", message_id=sent["id"]))["type"] == "ack"
    deleted = await watcher.next("deleted")
    assert deleted == {"type": "deleted", "message_id": sent["id"], "by_moderator": False}
    history = await client.get(f"/api/events/{event['id']}/chat")
    assert history.json()["items"] == []


async def test_others_cannot_delete_a_message_but_a_moderator_can(
    client, world, live_server, state
):
    _, url = await _room(client, world, live_server)
    author = await join(url, world["viewer"])
    other = await join(url, world["viewer2"])
    moderator = await join(url, world["moderator"])
    sent = await author.say("rude words")
    assert (await other.request(type="delete", message_id=sent["id"]))["code"] == "not_moderator"
    assert (await moderator.request(type="delete", message_id=sent["id"]))["type"] == "ack"
    assert (await author.next("deleted"))["by_moderator"] is True
    [record] = await _audit(state, "chat.delete")
    assert record.actor_id == world["moderator"].user.id
    assert record.target_id == sent["id"]


async def test_timed_out_user_cannot_send_until_the_timeout_ends(client, world, live_server, state):
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    owner = await join(url, world["owner"])
    reply = await owner.request(type="timeout", user_id=world["viewer"].id, seconds=1)
    assert reply["type"] == "ack"
    assert (await viewer.next("moderation"))["action"] == "timeout"
    assert (await viewer.request(type="send", body="hey"))["code"] == "timed_out"
    await asyncio.sleep(1.2)
    assert (await viewer.say("back"))["body"] == "back"
    [record] = await _audit(state, "chat.timeout")
    assert record.details["seconds"] == 1


async def test_ban_kicks_the_user_holds_across_reconnects_and_unban_lifts_it(
    client, world, live_server, state
):
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    moderator = await join(url, world["moderator"])
    assert (await moderator.request(type="ban", user_id=world["viewer"].id))["type"] == "ack"
    assert await viewer.closed_with() == 4406
    for _ in range(2):
        assert await (await connect(url, world["viewer"])).closed_with() == 4405
    assert (await moderator.request(type="unban", user_id=world["viewer"].id))["type"] == "ack"
    back = await join(url, world["viewer"])
    assert (await back.say("thanks"))["body"] == "thanks"
    assert len(await _audit(state, "chat.ban")) == 1
    assert len(await _audit(state, "chat.unban")) == 1


async def test_moderators_cannot_be_moderated_and_viewers_cannot_moderate(
    client, world, live_server
):
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    admin = await join(url, world["admin"])
    reply = await viewer.request(type="ban", user_id=world["viewer2"].id)
    assert reply["code"] == "not_moderator"
    reply = await admin.request(type="timeout", user_id=world["moderator"].id, seconds=10)
    assert reply["code"] == "target_is_moderator"
    reply = await admin.request(type="ban", user_id=world["owner"].id)
    assert reply["code"] == "target_is_moderator"
    reply = await admin.request(type="ban", user_id=str(uuid.uuid4()))
    assert reply["code"] == "user_not_found"


async def test_slow_mode_spaces_out_messages_but_not_moderators(client, world, live_server, state):
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    moderator = await join(url, world["moderator"])
    assert (await moderator.request(type="slow_mode", seconds=30))["type"] == "ack"
    room = await viewer.next("room")
    assert room["slow_mode_seconds"] == 30
    await viewer.say("first")
    assert (await viewer.request(type="send", body="second"))["code"] == "slow_mode"
    await moderator.say("moderators are exempt")
    await moderator.say("still exempt")
    [record] = await _audit(state, "chat.slow_mode")
    assert record.details == {"slow_mode_seconds": 30}


async def test_followers_only_mode_admits_followers_of_the_streamer(
    client, world, live_server, state
):
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    owner = await join(url, world["owner"])
    assert (await owner.request(type="followers_only", enabled=True))["type"] == "ack"
    assert (await viewer.request(type="send", body="hi"))["code"] == "followers_only"
    response = await client.post(
        f"/api/users/{world['owner'].id}/follow", headers=world["viewer"].headers
    )
    assert response.status_code in (200, 201, 204), response.text
    assert (await viewer.say("now I follow"))["body"] == "now I follow"
    assert len(await _audit(state, "chat.followers_only")) == 1


async def test_blocked_words_of_the_tenant_are_refused(client, world, live_server):
    response = await client.put(
        "/api/tenant/info",
        json={"settings": {"chat_blocked_words": ["spoiler", "bad phrase"]}},
        headers=world["admin"].headers,
    )
    assert response.status_code == 200, response.text
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    assert (await viewer.request(type="send", body="A SPOILER here"))["code"] == "blocked_word"
    assert (await viewer.request(type="send", body="a bad  phrase"))["type"] == "ack"
    assert (await viewer.request(type="send", body="a bad phrase!"))["code"] == "blocked_word"
    assert (await viewer.say("spoilers are fine as a longer word"))["body"].startswith("spoilers")


async def test_pinned_message_is_broadcast_and_shown_to_new_viewers(
    client, world, live_server, state
):
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    owner = await join(url, world["owner"])
    sent = await viewer.say("pin me")
    assert (await owner.request(type="pin", message_id=sent["id"]))["type"] == "ack"
    assert (await viewer.next("pinned"))["message"]["id"] == sent["id"]
    late = await connect(url)
    assert (await late.next("welcome"))["room"]["pinned"]["id"] == sent["id"]
    assert (await owner.request(type="unpin"))["type"] == "ack"
    assert (await viewer.next("pinned"))["message"] is None
    assert len(await _audit(state, "chat.pin")) == 1
    assert len(await _audit(state, "chat.unpin")) == 1


async def test_replies_point_at_their_parent(client, world, live_server):
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    parent = await viewer.say("question?")
    reply = await viewer.say("answer", reply_to=parent["id"])
    assert reply["reply_to"] == parent["id"]
    missing = await viewer.request(type="send", body="to nothing", reply_to=str(uuid.uuid4()))
    assert missing["code"] == "message_not_found"


async def test_messages_longer_than_the_limit_are_refused(client, world, live_server, state):
    _, url = await _room(client, world, live_server)
    viewer = await join(url, world["viewer"])
    limit = state.settings.chat_max_length
    assert (await viewer.request(type="send", body="x" * (limit + 1)))["code"] == "message_too_long"
    assert (await viewer.request(type="send", body="a\u202eb"))["code"] == "invalid_text"
    assert len((await viewer.say("x" * limit))["body"]) == limit
