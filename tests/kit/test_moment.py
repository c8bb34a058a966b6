"""`kit.moment.Moment`: an answer serves the askers of its moment, and no one after it."""

from __future__ import annotations

import time

import pytest

from bigfootlive.kit import moment
from bigfootlive.kit.moment import Moment


def test_an_answer_is_kept_for_its_moment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.monotonic()]
    monkeypatch.setattr(moment.time, "monotonic", lambda: now[0])
    memo: Moment[str] = Moment()
    assert memo.get("event") is None
    assert memo.put("event", "live", 0.25) == "live"
    assert memo.get("event") == "live"
    now[0] += 0.2
    assert memo.get("event") == "live"
    now[0] += 0.05  # its moment has passed
    assert memo.get("event") is None
    assert memo.put("other", "ended", 0) == "ended"  # 0: answered, not kept
    assert memo.get("other") is None


def test_it_is_bounded_and_kept_per_store() -> None:
    store: dict[str, object] = {}
    memo: Moment[int] = Moment.kept_in(store, "counts", size=3)
    assert Moment.kept_in(store, "counts") is memo
    for n in range(3):
        memo.put(n, n, 60)
    assert len(memo) == 3
    memo.put(3, 3, 60)  # full: starts over
    assert len(memo) == 1
    assert memo.get(0) is None
    assert memo.get(3) == 3
