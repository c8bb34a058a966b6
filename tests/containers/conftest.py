from __future__ import annotations

import pytest

from bigfootlive.app import Loop


@pytest.fixture
def loops(loops: frozenset[Loop]) -> frozenset[Loop]:
    """The container manager runs beside every test here (unless its settings turn it off)."""
    return loops | {Loop.CONTAINER_MANAGER}
