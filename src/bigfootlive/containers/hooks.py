"""The containers domain's hooks (wired in the composition root)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from bigfootlive.kit.hooks import Hook
from bigfootlive.streaming.ports import StreamingState


@dataclass(frozen=True, slots=True)
class Rollup:
    """An event container hands over its roll-up: the figures so far and the per-minute figures
    since the last hand-off (`handoff["minutes"]`). A handler that fails gets the same minutes
    again at the next hand-off."""

    state: StreamingState
    event_id: uuid.UUID
    handoff: dict[str, Any]


CONTAINER_ROLLUP: Hook[Rollup] = Hook("containers.rollup")
