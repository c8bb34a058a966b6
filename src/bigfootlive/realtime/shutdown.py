"""Process shutdown: on SIGTERM, every WebSocket of every hub closes with 4503 before the server
stops."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from bigfootlive.realtime.hub import shutdown_all_hubs


def install_sigterm_drain() -> Callable[[], None]:
    """On SIGTERM, first close every WebSocket with 4503, then hand the signal to the server
    (uvicorn), whose own shutdown would otherwise close them with a generic 1012."""
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:
        return lambda: None
    if not callable(previous):
        return lambda: None
    loop = asyncio.get_running_loop()
    forward: Callable[..., Any] = previous

    def drain_then_forward(signum: int, frame: Any) -> None:
        async def run() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(shutdown_all_hubs(), timeout=5.0)
            forward(signum, frame)

        loop.call_soon_threadsafe(lambda: _keep(loop.create_task(run())))

    try:
        signal.signal(signal.SIGTERM, drain_then_forward)
    except ValueError:  # not the main thread
        return lambda: None

    def restore() -> None:
        with contextlib.suppress(ValueError):
            if signal.getsignal(signal.SIGTERM) is drain_then_forward:
                signal.signal(signal.SIGTERM, previous)

    return restore


_TASKS: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
