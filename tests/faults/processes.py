"""API processes (`bigfootlive serve`) a test starts, and kills: `spawner(cls)` makes the fixture
that starts a process of `cls` (a `ServerProcess`) per call, on the test's `settings`, and stops
every process it started after the test. Used by the fault tests here, tests/realtime and
tests/cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from bigfootlive.config import Settings

if TYPE_CHECKING:  # tests/realtime/test_processes.py, which defines it, spawns with this too
    from tests.realtime.test_processes import ServerProcess

P = TypeVar("P", bound="ServerProcess")


def spawner(cls: type[P]) -> Any:
    """A fixture giving a function that starts a `cls` process and returns it once it serves
    (blocking: call it through `asyncio.to_thread`). Name the fixture by the assignment:
    `spawn = spawner(ServerProcess)`."""

    def fixture(settings: Settings, tmp_path: Path) -> Iterator[Callable[[], P]]:
        started: list[P] = []

        def start() -> P:
            server = cls(settings, tmp_path)
            started.append(server)
            server.start()
            return server

        yield start
        for server in started:
            server.stop()

    return pytest.fixture(fixture)
