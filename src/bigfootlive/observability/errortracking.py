"""Error tracking: Sentry (sentry-sdk) when SENTRY_DSN is set.

Every event leaves the process scrubbed (`scrub_event`): values under a secret's name
(passwords, tokens, API and stream keys, cookies, Authorization and other credential headers)
read `[redacted]` wherever they are (request data, headers, frame variables, breadcrumbs,
extra), and every string is passed through the log redaction (credential query parameters,
JWT-shaped strings, our stream and API keys). The request id of the request that raised (the
one in `X-Request-ID` and in every log line) is attached as the `request_id` tag.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sentry_sdk
import structlog
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from bigfootlive import __version__
from bigfootlive.config import Settings
from bigfootlive.observability.logging import REDACTED, SECRET_KEYS, redact_text

# Names whose values are credentials, wherever they appear in an event (lower case; a name is
# also secret when it contains one of SECRET_PARTS).
SECRET_NAMES = SECRET_KEYS | {
    "cookie",
    "cookies",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-csrf-token",
    "proxy-authorization",
    "passwd",
    "pwd",
    "private_key",
    "session",
    "sessionid",
    "credentials",
    "signature",
    "stream_key_ciphertext",
    "secret_encrypted",
    "secret_ciphertext",
}
SECRET_PARTS = ("password", "secret", "token", "api_key", "apikey", "stream_key", "cookie")
# Our own credential shapes, in any text: stream keys (sk_…), API keys (bfl_…), refresh and
# other opaque tokens are URL-safe base64 and only reach text through the names above.
_OWN_SECRETS = re.compile(r"\b(?:sk|bfk)_[A-Za-z0-9_-]{16,}")
# "password=…", "client_secret: …" in a message (not only in a URL's query string)
_NAMED_SECRET = re.compile(
    r"(?i)\b(?P<name>[a-z_]*(?:password|passwd|secret|token|api_key|stream_key))"
    r"(?P<sep>\s*[=:]\s*)(?!\[redacted\])[^\s,;)'\"&]+"
)


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_NAMES or any(part in lowered for part in SECRET_PARTS)


def scrub_text(text: str) -> str:
    text = _OWN_SECRETS.sub(REDACTED, redact_text(text))
    if "=" in text or ":" in text:
        text = _NAMED_SECRET.sub(lambda m: m.group("name") + m.group("sep") + REDACTED, text)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_name(k) else _scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        # headers arrive as [name, value] pairs in some events
        if len(value) == 2 and isinstance(value[0], str) and is_secret_name(value[0]):
            return [value[0], REDACTED]
        return [_scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub(list(value)))
    return value


def scrub_event(event: Any, _hint: Any = None) -> Any:
    """`before_send`: the event with every secret masked and the request id attached."""
    scrubbed = _scrub(dict(event))
    request = scrubbed.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        if isinstance(request.get("data"), str):  # a raw body we cannot parse: drop it
            request["data"] = REDACTED
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        tags = scrubbed.setdefault("tags", {})
        if isinstance(tags, dict):
            tags["request_id"] = request_id
    return scrubbed


def init_error_tracking(settings: Settings) -> bool:
    """Starts the Sentry client when SENTRY_DSN is set (once per process); True when on."""
    dsn = settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else ""
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.sentry_environment or settings.node_env,
        release=f"bigfootlive@{__version__}",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        max_request_body_size="small",
        event_scrubber=EventScrubber(
            denylist=sorted({*DEFAULT_DENYLIST, *SECRET_NAMES}), recursive=True
        ),
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=lambda crumb, _hint: _scrub(dict(crumb)),
        # Log lines become breadcrumbs, error lines events (a failed job in a worker); the
        # same exception reported twice (the request's and its log line) is sent once.
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        shutdown_timeout=2,
    )
    return True
