"""A chat send over the gateway, on both backends: what it checks at each send and in what order,
and that its broadcast follows the commit. On PostgreSQL the send is two database calls
(chat/send_pg.py); on SQLite the ORM's transaction (chat/send.py): the answers are the same."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from bigfootlive.chat import send_pg
from bigfootlive.models import ChatBan, ChatMessage, Event
from tests.realtime.conftest import REALTIME_SETTINGS, create_event, join


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**REALTIME_SETTINGS, "chat_rate_limit": "3/minute"}


async def _set_event(state, event_id: str, **values: Any) -> None:
    async with state.db.transaction() as session:
        await session.execute(update(Event).where(Event.id == uuid.UUID(event_id)).values(**values))


async def test_the_broadcast_follows_the_commit_and_the_functions_serve_postgres(
    backend, client, world, live_server, state, monkeypatch
):
    called: list[str] = []
    call_scoped = state.db.call_scoped

    async def recording(function: str, *args: Any, **kwargs: Any) -> Any:
        if function.startswith("bfl_chat"):
            called.append(function)
        return await call_scoped(function, *args, **kwargs)

    monkeypatch.setattr(state.db, "call_scoped", recording)
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    sender = await join(url, world["viewer"])
    watcher = await join(url, world["viewer2"])

    await sender.send(type="send", body="stored first", ref="r1")
    got = await watcher.next("message")
    # The viewer has it: the row is committed (read on another connection).
    async with state.db.sessionmaker() as session:
        row = await session.get(ChatMessage, uuid.UUID(got["message"]["id"]))
    assert row is not None
    assert row.body == "stored first"
    assert row.user_id == world["viewer"].user.id
    assert row.deleted_at is None
    ack = await sender.request(type="send", body="second")
    assert ack["message"]["body"] == "second"
    expected = ["bfl_chat_send_read", "bfl_chat_send_write"] * 2 if backend == "postgres" else []
    assert called == expected
    assert send_pg.applies(state) is (backend == "postgres")


async def test_an_ended_event_refuses_sends_as_closed_before_judging_the_text(
    client, world, live_server, state
):
    event = await create_event(client, world["owner"])
    viewer = await join(live_server.url(event["id"]), world["viewer"])
    await _set_event(state, event["id"], status="ended")
    assert (await viewer.request(type="send", body="   "))["code"] == "chat_closed"
    assert (await viewer.request(type="send", body="hi"))["code"] == "chat_closed"


async def test_an_invalid_message_does_not_count_against_the_rate_limit(client, world, live_server):
    event = await create_event(client, world["owner"])
    viewer = await join(live_server.url(event["id"]), world["viewer"])
    for _ in range(4):
        assert (await viewer.request(type="send", body=" "))["code"] == "empty_message"
    for n in range(3):
        await viewer.say(f"message {n}")
    assert (await viewer.request(type="send", body="one more"))["code"] == "rate_limited"


async def test_visibility_and_bans_are_read_again_at_each_send(client, world, live_server, state):
    event = await create_event(client, world["owner"], visibility="tenant")
    url = live_server.url(event["id"])
    viewer = await join(url, world["viewer"])
    banned = await join(url, world["viewer2"])
    await viewer.say("while it is open")
    # A ban written without the gateway's kick (another process's, in flight): refused at send.
    async with state.db.transaction() as session:
        session.add(
            ChatBan(
                event_id=uuid.UUID(event["id"]),
                user_id=world["viewer2"].user.id,
                tenant_id=world["tenant"].id,
            )
        )
    assert (await banned.request(type="send", body="hello"))["code"] == "banned"
    await _set_event(state, event["id"], visibility="private")
    assert (await viewer.request(type="send", body="now?"))["code"] == "event_not_found"
    owner = await join(url, world["owner"])
    assert (await owner.say("the owner still may"))["body"] == "the owner still may"
    async with state.db.sessionmaker() as session:
        bodies = (await session.execute(select(ChatMessage.body))).scalars().all()
    assert sorted(bodies) == ["the owner still may", "while it is open"]
