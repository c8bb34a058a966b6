"""Background work of the events domain, started by the app lifespan."""

from __future__ import annotations

import structlog

from bigfootlive.composition import AppState
from bigfootlive.events import lifecycle, silence
from bigfootlive.kit.periodic import Periodic

log = structlog.get_logger(__name__)


def reconnect_sweeper(state: AppState) -> Periodic:
    """End events whose publisher did not come back within RECONNECT_WINDOW_SECONDS, after
    moving to `reconnecting` the live events whose media server went silent
    (PUBLISHER_SILENCE_SECONDS, events/silence.py).

    Runs in every API process; the conditional UPDATE makes each event end exactly once, so
    no leader election is needed.
    """

    async def sweep() -> None:
        for event in await silence.mark_silent_publishers(state):
            log.warning("publisher_silent_media_server_gone", event_id=str(event.id))
        for event in await lifecycle.end_expired_reconnects(state):
            log.info("event_ended_after_reconnect_window", event_id=str(event.id))

    return Periodic("reconnect-sweeper", sweep, state.settings.reconnect_sweep_interval_seconds)
