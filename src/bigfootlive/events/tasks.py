"""Background work of the events domain, started by the app lifespan."""

from __future__ import annotations

import asyncio

import structlog

from bigfootlive.events import service
from bigfootlive.state import AppState

log = structlog.get_logger(__name__)


async def sweep_reconnect_windows(state: AppState) -> None:
    """End events whose publisher did not come back within RECONNECT_WINDOW_SECONDS.

    Runs in every API process; the conditional UPDATE makes each event end exactly once, so
    no leader election is needed.
    """
    interval = state.settings.reconnect_sweep_interval_seconds
    while True:
        try:
            ended = await service.end_expired_reconnects(state)
            for event in ended:
                log.info("event_ended_after_reconnect_window", event_id=str(event.id))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconnect_sweep_failed")
        await asyncio.sleep(interval)
