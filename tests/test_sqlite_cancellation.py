"""The embedded SQLite database stays writable after tasks are cancelled in mid-transaction.

A request given up or a worker stopped is a cancelled task; cancelled between a statement and
its fetch, it used to leave a zombie connection holding the write lock until the garbage
collector came by, and every other writer failed with "database is locked" meanwhile."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from bigfootlive.config import Settings
from bigfootlive.db import make_engine

ROUNDS = 150


async def test_cancelled_transactions_leave_no_write_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / "cancel.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}", Settings())
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        await conn.execute(text("INSERT INTO counter VALUES (1, 0)"))

    async def write_forever() -> None:
        while True:
            async with sessions.begin() as session:
                await session.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
                await session.execute(text("SELECT n FROM counter"))

    rng = random.Random(7)
    locked = []
    try:
        for round_ in range(ROUNDS):
            writers = [asyncio.create_task(write_forever()) for _ in range(3)]
            await asyncio.sleep(rng.random() * 0.02)
            for task in writers:
                task.cancel()
            await asyncio.wait_for(asyncio.gather(*writers, return_exceptions=True), 30)
            # Another process's writer (its own connection, half a second of patience).
            other = sqlite3.connect(path, timeout=0.5)
            try:
                with other:
                    other.execute("UPDATE counter SET n = n + 1 WHERE id = 1")
            except sqlite3.OperationalError as exc:
                locked.append((round_, str(exc)))
                break
            finally:
                other.close()
    finally:
        await engine.dispose()
    assert locked == []
