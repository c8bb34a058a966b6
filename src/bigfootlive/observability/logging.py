"""structlog JSON logs; every line of a request carries its request id (contextvars)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "token",
        "refresh_token",
        "access_token",
        "authorization",
        "secret",
        "stream_key",
        "client_secret",
        "code",
        "api_key",
        "id_token",
        "bind_password",
        "samlresponse",
        "samlrequest",
    }
)


REDACTED = "[redacted]"

# Query parameters that carry credentials. A URL reaches a log line in uvicorn's WebSocket
# lines ("WebSocket /ws/events/…?token=…" [accepted]), in exception messages, and wherever a
# URL is logged; a WebSocket client that cannot set headers puts its token in the URL.
QUERY_SECRETS = (
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "key",
    "api_key",
    "stream_key",
    "code",
    "state",
    "password",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "SAMLResponse",
    "SAMLRequest",
)
_QUERY_SECRET = re.compile(
    # ?name=value, &name=value, ;name=value (or a bare query string), and the same
    # percent-encoded (a URL inside a URL).
    r"(?P<lead>(?:^|[?&;]|%3F|%26)(?:" + "|".join(QUERY_SECRETS) + r")(?:=|%3D))"
    r"(?:(?!%26)[^&#;\s\"'<>\\])+",
    re.IGNORECASE,
)
# header.payload.signature, each base64url; header and payload are JSON objects ("eyJ" = '{"').
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


def redact_text(text: str) -> str:
    """`text` with credential query parameters and JWT-shaped strings replaced."""
    if "=" in text or "%3" in text:  # "%3D" or "%3d": the "3" has no case
        text = _QUERY_SECRET.sub(lambda m: m.group("lead") + REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = REDACTED
    return event_dict


def _redact_values(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Every rendered value, ours and other libraries' (uvicorn's messages), exceptions too."""
    for key, value in event_dict.items():
        event_dict[key] = _scrub(value)
    return event_dict


def _redacting(renderer: structlog.types.Processor) -> structlog.types.Processor:
    """`renderer`, with the rendered line redacted once more: values that are not strings (a URL
    object, say) reach the line through their repr, after `_redact_values` looked at them."""

    def render(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> Any:
        line = renderer(logger, name, event_dict)
        return redact_text(line) if isinstance(line, str) else line

    return render


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        # A line below the level is dropped before any processor runs (else each one's context,
        # timestamp and redaction were built for the logging module to throw away).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_values,
            _redacting(renderer),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware writes the access line, with the route template and request id.
    logging.getLogger("uvicorn.access").disabled = True
