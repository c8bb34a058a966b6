"""Answers kept in a process for a moment: `Moment`.

For a hot path that many clients ask the same question at once (every waiting player polling
an event at go-live, every player's beacons naming the same few events): the first asker's
answer serves the others for a fraction of a second, so a popular key costs one load per
process per moment, not one per request. Nothing invalidates an entry: use it only where an
answer that old is acceptable (say how old where it is used), and check access per request.

Bounded: at `size` keys the next `put` starts over, which costs a moment's reloads, not the
bookkeeping of an LRU on every hit.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, MutableMapping
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class Moment(Generic[V]):
    __slots__ = ("_kept", "size")

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._kept: dict[Hashable, tuple[float, V]] = {}

    @classmethod
    def kept_in(cls, store: MutableMapping[Any, Any], name: str, size: int = 10_000) -> Moment[V]:
        """The memo `name` of a process-wide `store` (e.g. `Database.batches`: one per app),
        made there when first wanted."""
        memo: Moment[V] | None = store.get(name)
        if memo is None:
            memo = store[name] = cls(size)
        return memo

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Hashable) -> V | None:
        """The value put for `key` if its moment has not passed, else None."""
        kept = self._kept.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        return None

    def put(self, key: Hashable, value: V, seconds: float) -> V:
        """Keep `value` for `seconds` (0: not at all); answers it."""
        if seconds > 0:
            if len(self._kept) >= self.size:
                self._kept.clear()
            self._kept[key] = (time.monotonic() + seconds, value)
        return value
