"""A playback id's cache entry, when missing (it expires like every event snapshot), is read
from the database once per process however many `play` callbacks want it at once: every viewer
of a popular event asks when its entry expires, and each used to make its own query."""

from __future__ import annotations

import asyncio
import uuid

from bigfootlive.errors import ServiceUnavailable
from bigfootlive.events import cache as event_entries
from bigfootlive.events import keys
from bigfootlive.events import repository as events_repo

VIEWERS = 16


def _count_loads(monkeypatch) -> list[str]:
    """Count the database reads by playback id, each a little slow, as under load, so that
    every concurrent caller has found the entry missing before the first read ends."""
    made: list[str] = []
    find = events_repo.find_by_playback_id

    async def counted(session, playback_id):
        made.append(playback_id)
        await asyncio.sleep(0.2)
        return await find(session, playback_id)

    monkeypatch.setattr(events_repo, "find_by_playback_id", counted)
    return made


async def _play(studio, event, client_id: str):
    return await studio.srs(
        "on_play.json", client_id=client_id, playback_id=event["playback_id"], token=""
    )


async def test_concurrent_plays_of_a_cold_entry_make_one_load(studio, state, monkeypatch):
    event = await studio.live_event()
    entry = event_entries.by_playback_entry(event["playback_id"])
    await state.cache.delete(entry)
    made = _count_loads(monkeypatch)
    answers = await asyncio.gather(*(_play(studio, event, f"v{i}") for i in range(VIEWERS)))
    assert [(a.status_code, a.text) for a in answers] == [(200, "0")] * VIEWERS
    assert made == [event["playback_id"]]
    assert await state.cache.get(entry) is not None
    # Over: the next cold entry is loaded again (only the cache keeps results).
    await state.cache.delete(entry)
    assert (await _play(studio, event, "late")).text == "0"
    assert len(made) == 2


async def test_an_unknown_playback_id_is_refused_to_every_caller_after_one_load(
    studio, state, monkeypatch
):
    made = _count_loads(monkeypatch)
    ghost = {"playback_id": "pb" + uuid.uuid4().hex[:20]}
    answers = await asyncio.gather(*(_play(studio, ghost, f"v{i}") for i in range(VIEWERS)))
    assert {a.status_code for a in answers} == {403}
    assert len(made) == 1
    # remembered as unknown for a while: the next caller asks no one
    assert (await _play(studio, ghost, "again")).status_code == 403
    assert len(made) == 1


async def test_a_failed_load_fails_every_waiter_and_the_next_caller_retries(
    studio, state, monkeypatch
):
    event = await studio.event()
    await state.cache.delete(event_entries.by_playback_entry(event["playback_id"]))
    made: list[int] = []

    async def failing(session, playback_id):
        made.append(1)
        await asyncio.sleep(0.3)  # the database's time to fail (e.g. a pool timeout)
        raise ServiceUnavailable("database down")

    monkeypatch.setattr(events_repo, "find_by_playback_id", failing)
    results = await asyncio.gather(
        *(keys.find_by_playback_id(state, event["playback_id"]) for _ in range(VIEWERS)),
        return_exceptions=True,
    )
    assert len(made) == 1
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    monkeypatch.undo()
    ref = await keys.find_by_playback_id(state, event["playback_id"])
    assert ref is not None
    assert str(ref.id) == event["id"]


async def test_a_visibility_change_still_reaches_the_next_play(studio, state):
    """The load does not keep answers: once the change is committed (and its snapshot
    rewritten), a cold or warm entry answers with the new visibility."""
    event = await studio.live_event()
    assert (await _play(studio, event, "v1")).text == "0"
    changed = await studio.client.put(
        f"/api/events/{event['id']}",
        json={"visibility": "private"},
        headers=studio.streamer.headers,
    )
    assert changed.status_code == 200, changed.text
    refused = await _play(studio, event, "v2")
    assert refused.status_code == 403
    assert refused.json()["msg"] == "playback_token_required"
    await state.cache.delete(event_entries.by_playback_entry(event["playback_id"]))
    assert (await _play(studio, event, "v3")).status_code == 403


async def test_a_load_that_read_before_a_change_does_not_undo_its_snapshot(
    studio, state, monkeypatch
):
    """A load reads the row, then the change commits and rewrites the snapshot, then the load
    writes what it read: the older snapshot must not replace the newer one (it would answer
    every play with the old visibility until the entry expires)."""
    event = await studio.live_event()
    await state.cache.delete(event_entries.by_playback_entry(event["playback_id"]))
    read, release = asyncio.Event(), asyncio.Event()
    find = events_repo.find_by_playback_id

    async def read_then_wait(session, playback_id):
        row = await find(session, playback_id)
        read.set()
        await release.wait()  # the change commits meanwhile
        return row

    monkeypatch.setattr(events_repo, "find_by_playback_id", read_then_wait)
    early = asyncio.create_task(_play(studio, event, "early"))
    await read.wait()
    changed = await studio.client.put(
        f"/api/events/{event['id']}",
        json={"visibility": "private"},
        headers=studio.streamer.headers,
    )
    assert changed.status_code == 200, changed.text
    release.set()
    assert (await early).text == "0"  # it asked before the change: answered as it read
    monkeypatch.undo()
    refused = await _play(studio, event, "after")
    assert refused.status_code == 403
    assert refused.json()["msg"] == "playback_token_required"
