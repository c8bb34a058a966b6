"""The media server's own credential: derived from JWT_SECRET, never stored, never in a URL.

nginx-rtmp cannot set headers on its `on_*` notifications, so the generated configuration
sends them to nginx's own HTTP server on loopback, which proxies them to the API with this
credential in `X-API-Key` (and does the same for delivery authorization subrequests). A URL
query `?api_key=` would be printed by nginx's error log; a header is not.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid

from bigfootlive.apikeys import service as apikeys
from bigfootlive.apikeys.service import ApiPrincipal, InvalidApiKey
from bigfootlive.config import Settings
from bigfootlive.kit.backends import Cache
from bigfootlive.streaming.ports import StreamingState

PREFIX = "bfm_"
# A platform-scope principal: the media server acts for every tenant's events.
MEDIA_SERVER_PRINCIPAL = ApiPrincipal(
    key_id=uuid.uuid5(uuid.NAMESPACE_URL, "bigfootlive:media-server"), tenant_id=None
)


@functools.lru_cache(maxsize=8)
def _derive(secrets: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        PREFIX + hmac.new(s.encode(), b"bfl-media-server-credential", hashlib.sha256).hexdigest()
        for s in secrets
    )


def credentials(settings: Settings) -> tuple[str, ...]:
    """The current credential first, then those of JWT_PREVIOUS_SECRETS (rotation)."""
    secrets = (settings.jwt_secret, *settings.jwt_previous_secrets)
    return _derive(tuple(s.get_secret_value() for s in secrets))


def credential(settings: Settings) -> str:
    return credentials(settings)[0]


async def principal(
    state: StreamingState, secret: str | None, *, cache: Cache | None = None
) -> ApiPrincipal:
    """The media server's derived credential, or an API key (`bfk_...`; `cache`: a view of
    the cache that may already hold its entry)."""
    if secret is not None and secret.startswith(PREFIX):
        encoded = secret.encode()
        if any(hmac.compare_digest(encoded, c.encode()) for c in credentials(state.settings)):
            return MEDIA_SERVER_PRINCIPAL
        raise InvalidApiKey()
    return await apikeys.authenticate(state, secret, cache=cache)
