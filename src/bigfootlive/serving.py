"""How BigfootLive runs under uvicorn: one set of options for `bigfootlive serve`, and for the
benchmarks and tests that start a real server, so what is measured and tested is what runs."""

from __future__ import annotations

from typing import Any


def uvicorn_options(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (overrides win)."""
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets-sansio",  # applies write back-pressure, which slow-consumer cut-off needs
        # Uncompressed frames are the same bytes for every viewer: the hub's fast path writes
        # one pre-built frame to every socket (realtime/connection.py).
        "ws_per_message_deflate": False,
        # No protocol-level pings from uvicorn: the hub's heartbeat pings every socket with one
        # shared frame and closes the silent ones (WS_IDLE_TIMEOUT_SECONDS); uvicorn's own kept
        # a timer per socket and answered tens of thousands of pongs a minute at 10k viewers.
        "ws_ping_interval": None,
        "proxy_headers": False,  # TRUSTED_PROXIES decides whose X-Forwarded-For is believed
        "server_header": False,  # no `Server: uvicorn`: do not advertise the stack
        # Our middleware writes the access line (route template, request id, no query string).
        "access_log": False,
        # Logging is ours (observability/logging.py: JSON lines, credentials redacted). uvicorn's
        # own configuration would print its lines, WebSocket URLs and their query strings
        # included, through handlers of its own.
        "log_config": None,
        "lifespan": "on",
    }
    options.update(overrides)
    return options
