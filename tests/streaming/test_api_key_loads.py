"""An API key's cache entry, when missing (it expires every minute), is read from the database
once per process however many callbacks want it at once, and a revocation still wins."""

from __future__ import annotations

import asyncio

import pytest

from bigfootlive.apikeys import service as apikeys
from bigfootlive.errors import ServiceUnavailable

CALLERS = 16


def _count_loads(monkeypatch) -> list[int]:
    """Count the database reads of a key entry (`apikeys._load`), each a little slow, as under
    load, so that every concurrent caller has found the entry missing before the first ends."""
    made: list[int] = []
    load = apikeys._load

    async def counted(state, digest):
        made.append(1)
        await asyncio.sleep(0.2)
        return await load(state, digest)

    monkeypatch.setattr(apikeys, "_load", counted)
    return made


async def test_concurrent_callers_of_a_cold_key_make_one_load(studio, state, monkeypatch):
    entry = apikeys.cache_key(studio.api_key)
    assert entry is not None
    await state.cache.delete(entry)
    made = _count_loads(monkeypatch)
    principals = await asyncio.gather(
        *(apikeys.authenticate(state, studio.api_key) for _ in range(CALLERS))
    )
    assert len(made) == 1
    assert len({p.key_id for p in principals}) == 1
    assert all(p.tenant_id == studio.admin.tenant.id for p in principals)
    assert await state.cache.get(entry) is not None
    # Over: the next cold entry is loaded again (nothing kept but the cache's entry).
    await state.cache.delete(entry)
    await apikeys.authenticate(state, studio.api_key)
    assert len(made) == 2


async def test_a_revoked_key_is_refused_at_once_with_the_cache_warm_or_cold(studio, state, client):
    await apikeys.authenticate(state, studio.api_key)  # warm
    listed = await client.get("/api/api-keys", headers=studio.admin.headers)
    key_id = next(k["id"] for k in listed.json() if studio.api_key.startswith(k["prefix"]))
    revoked = await client.delete(f"/api/api-keys/{key_id}", headers=studio.admin.headers)
    assert revoked.status_code in (200, 204), revoked.text
    with pytest.raises(apikeys.InvalidApiKey):
        await apikeys.authenticate(state, studio.api_key)
    entry = apikeys.cache_key(studio.api_key)
    assert entry is not None
    await state.cache.delete(entry)  # cold: every concurrent caller is refused by the one load
    results = await asyncio.gather(
        *(apikeys.authenticate(state, studio.api_key) for _ in range(CALLERS)),
        return_exceptions=True,
    )
    assert all(isinstance(r, apikeys.InvalidApiKey) for r in results)


async def test_a_revocation_written_during_a_load_is_not_overwritten(studio, state, monkeypatch):
    """The loader writes its entry only if none came meanwhile: a revocation's empty entry,
    written after the load read the row, stays, and the load's callers get it."""
    entry = apikeys.cache_key(studio.api_key)
    assert entry is not None
    await state.cache.delete(entry)
    load = apikeys._load

    async def revoked_meanwhile(state_, digest):
        raw = await load(state_, digest)  # read while the key was still valid
        await state.cache.set(entry, b"{}", ttl=60)  # what `revoke_key` writes after commit
        return raw

    monkeypatch.setattr(apikeys, "_load", revoked_meanwhile)
    with pytest.raises(apikeys.InvalidApiKey):
        await apikeys.authenticate(state, studio.api_key)
    assert await state.cache.get(entry) == b"{}"


async def test_a_failed_load_fails_every_waiter_and_the_next_caller_retries(
    studio, state, monkeypatch
):
    entry = apikeys.cache_key(studio.api_key)
    assert entry is not None
    await state.cache.delete(entry)
    made: list[int] = []

    async def failing(state_, digest):
        made.append(1)
        await asyncio.sleep(0.3)  # the database's time to fail (e.g. a pool timeout)
        raise ServiceUnavailable("database down")

    monkeypatch.setattr(apikeys, "_load", failing)
    results = await asyncio.gather(
        *(apikeys.authenticate(state, studio.api_key) for _ in range(CALLERS)),
        return_exceptions=True,
    )
    assert len(made) == 1
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    assert await state.cache.get(entry) is None  # nothing cached from a failure
    monkeypatch.undo()
    principal = await apikeys.authenticate(state, studio.api_key)
    assert principal.tenant_id == studio.admin.tenant.id
