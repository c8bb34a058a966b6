"""Media-server callbacks: who may publish and who may watch. Knows nothing of HTTP or vendors.

The decision path reads the cache (API key, key -> event, event snapshot); the only database
work on a publish is the one conditional UPDATE that makes the event live, which is also what
refuses a second simultaneous publisher. Repeated callbacks are idempotent, and a `done` that
overtakes its `publish` leaves a short-lived tombstone so the late publish is refused.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.analytics import service as analytics
from bigfootlive.analytics.schemas import HealthSample
from bigfootlive.apikeys.service import ApiPrincipal
from bigfootlive.authz.scoping import act_for_tenant
from bigfootlive.db import utcnow
from bigfootlive.errors import BigfootError
from bigfootlive.events import cache as event_cache
from bigfootlive.events import keys, lifecycle, silence
from bigfootlive.events.cache import EventRef
from bigfootlive.events.playback import INTERNAL_PULL_PREFIX, InvalidPlaybackToken
from bigfootlive.events.schemas import EventStatus, Visibility
from bigfootlive.kit.backends import Cache
from bigfootlive.models import Event
from bigfootlive.streaming import feedback
from bigfootlive.streaming.base import CallbackKind, Decision, MediaCallback
from bigfootlive.streaming.health import HealthReport
from bigfootlive.streaming.ports import StreamingState
from bigfootlive.tenants import service as tenants

log = structlog.get_logger(__name__)

_TOMBSTONE_TTL = 120.0


_NOTHING_TO_DECIDE = (CallbackKind.OTHER, CallbackKind.SEGMENT, CallbackKind.STOP)


def cache_entries(
    state: StreamingState, callback: MediaCallback, event_id: uuid.UUID | None = None
) -> list[str]:
    """The cache entries `decide` will read for this callback, so that the caller can fetch
    them (with its credential's) in one round trip and hand them over as `via`."""
    if callback.kind in _NOTHING_TO_DECIDE:
        return []
    if callback.stream_key:
        key_hash = keys.stream_key_hashes(state.settings, callback.stream_key)[0]
        entries = [event_cache.by_key_entry(key_hash)]
        if callback.kind == CallbackKind.PUBLISH:
            entries.append(_tombstone(key_hash, callback.client_id))
        return entries
    if callback.playback_id:
        return [event_cache.by_playback_entry(callback.playback_id)]
    if event_id is not None:
        return [event_cache.by_id_entry(event_id)]
    return []


async def decide(
    state: StreamingState,
    session: AsyncSession,
    principal: ApiPrincipal,
    callback: MediaCallback,
    *,
    event_id: uuid.UUID | None = None,
    via: Cache | None = None,
) -> Decision:
    """Answer one callback. `event_id` pins the event (generic per-event webhook); `via`: a
    view of the cache holding the entries of `cache_entries` (one round trip for them all)."""
    if callback.kind in _NOTHING_TO_DECIDE:
        return Decision.allow()
    cache = state.cache if via is None else via
    ref = await _resolve(state, session, callback, event_id, cache)
    if ref is not None and principal.may_act_for(ref.tenant_id):
        # The stream key (or playback id) named the event, the key may act for its tenant:
        # the rest of the callback touches that tenant's rows only (row-level security).
        act_for_tenant(ref.tenant_id)
    if ref is None or not principal.may_act_for(ref.tenant_id):
        decision = Decision.deny("unknown_stream")
    elif callback.kind != CallbackKind.UNPUBLISH and not await _tenant_active(
        state, session, principal, ref
    ):
        decision = Decision.deny("tenant_inactive")
    elif callback.kind == CallbackKind.PUBLISH:
        await silence.heard_from_publisher(state, state.cache, ref.id)  # before it goes live
        decision = await _publish(state, session, ref, callback, cache)
    elif callback.kind == CallbackKind.UNPUBLISH:
        decision = await _unpublish(state, session, ref, callback)
    elif callback.kind == CallbackKind.PUBLISHER_ALIVE:
        decision = _publisher_alive(ref, callback)
        if decision.allowed:
            await silence.heard_from_publisher(state, state.cache, ref.id)
    elif callback.kind in (CallbackKind.PLAY, CallbackKind.PLAYER_ALIVE, CallbackKind.PLAYBACK):
        decision = _play(state, ref, callback)
    else:  # RECORDED
        decision = Decision.allow()
    if callback.kind == CallbackKind.PUBLISH and not decision.allowed:
        if ref is not None and principal.may_act_for(ref.tenant_id):
            target: EventRef | None = ref
        else:
            target = await _refused_event(state, session, principal, callback, event_id, cache)
        if target is not None:
            await feedback.record_refusal(state, target, decision.reason, callback.ip)
    # The one line of a decision; for a publish that put the event on air (`went_to`) it is
    # also that change's line (`lifecycle` logs no `event_state_changed` for a go-live).
    log.info(
        "media_callback",
        kind=callback.kind.value,
        tenant_id=None if ref is None else str(ref.tenant_id),
        event_id=None if ref is None else str(ref.id),
        client_id=callback.client_id,
        allowed=decision.allowed,
        reason=decision.reason,
        status=decision.went_to,
        previous=None if decision.went_to is None or ref is None else ref.status.value,
    )
    return decision


async def _resolve(
    state: StreamingState,
    session: AsyncSession,
    callback: MediaCallback,
    event_id: uuid.UUID | None,
    cache: Cache,
) -> EventRef | None:
    if callback.stream_key:
        ref = await keys.find_by_stream_key(state, session, callback.stream_key, via=cache)
        if ref is None and callback.kind in _RUNNING_PUBLISHER:
            ref = await _rotated_away(state, session, callback, callback.stream_key)
        if ref is not None and callback.playback_id and callback.playback_id != ref.playback_id:
            return None  # a valid key for another event's path
    elif callback.playback_id:
        ref = await keys.find_by_playback_id(state, callback.playback_id, via=cache)
    elif event_id is not None:
        ref = await keys.find_ref(state, session, event_id, via=cache)
    else:
        return None
    if ref is not None and event_id is not None and ref.id != event_id:
        return None
    return ref


# What the running publisher says after its key was rotated (the media server still names it
# by the old key); a new publish with that key is refused as an unknown key.
_RUNNING_PUBLISHER = (CallbackKind.UNPUBLISH, CallbackKind.PUBLISHER_ALIVE)


async def _rotated_away(
    state: StreamingState, session: AsyncSession, callback: MediaCallback, stream_key: str
) -> EventRef | None:
    """The live event whose key was rotated while this very publisher was publishing with
    `stream_key`; None for anyone else (another client id, or the event no longer live)."""
    if not callback.client_id:
        return None
    ref = await keys.find_by_rotated_key(state, session, stream_key)
    if ref is None or ref.status != EventStatus.LIVE or ref.publisher_id != callback.client_id:
        return None
    return ref


async def _refused_event(
    state: StreamingState,
    session: AsyncSession,
    principal: ApiPrincipal,
    callback: MediaCallback,
    event_id: uuid.UUID | None,
    cache: Cache,
) -> EventRef | None:
    """The event a refused publish was aimed at when its key did not lead there: the path's
    playback id (SRS, MediaMTX) or the generic webhook's event, in the principal's reach."""
    if callback.playback_id:
        ref = await keys.find_by_playback_id(state, callback.playback_id, via=cache)
    elif event_id is not None:
        ref = await keys.find_ref(state, session, event_id, via=cache)
    else:
        return None
    if ref is None or not principal.may_act_for(ref.tenant_id):
        return None
    return ref


async def _tenant_active(
    state: StreamingState, session: AsyncSession, principal: ApiPrincipal, ref: EventRef
) -> bool:
    """A tenant's own key is refused at authentication once the tenant is deactivated; a
    platform key is not, so the event's tenant is checked here (one cache read)."""
    if principal.tenant_id is not None:
        return True
    return await tenants.is_active(state, session, ref.tenant_id)


def _tombstone(key_hash: str, client_id: str) -> str:
    """A publisher (by its stream key and client id) whose `done` came before its `publish`."""
    return f"streaming:gone:{key_hash}:{client_id}"


async def _publish(
    state: StreamingState,
    session: AsyncSession,
    ref: EventRef,
    callback: MediaCallback,
    cache: Cache,
) -> Decision:
    if callback.stream_key is None:
        return Decision.deny("stream_key_required")
    status = ref.status
    if status.is_finished:
        return Decision.deny("event_finished")
    if status == EventStatus.LIVE and ref.publisher_id == callback.client_id:
        return Decision.allow(relay_to=ref.playback_id)  # a retried callback
    key_hash = keys.stream_key_hashes(state.settings, callback.stream_key)[0]
    if await cache.get(_tombstone(key_hash, callback.client_id)) is not None:
        return Decision.deny("publisher_already_left")
    try:
        moved = await lifecycle.publisher_connected(state, session, ref, callback.client_id)
    except BigfootError as exc:
        return Decision.deny(exc.code)
    went_to = None if moved is ref else EventStatus(moved.status).value
    return Decision.allow(relay_to=ref.playback_id, went_to=went_to)


async def _unpublish(
    state: StreamingState, session: AsyncSession, ref: EventRef, callback: MediaCallback
) -> Decision:
    moved = await lifecycle.publisher_disconnected(state, session, ref, callback.client_id or None)
    if moved is None and callback.client_id and callback.stream_key:
        # Not the connected publisher: a repeat, or a `done` overtaking its `publish`.
        key_hash = keys.stream_key_hashes(state.settings, callback.stream_key)[0]
        await state.cache.set(_tombstone(key_hash, callback.client_id), b"1", ttl=_TOMBSTONE_TTL)
    return Decision.allow()


def _publisher_alive(ref: EventRef, callback: MediaCallback) -> Decision:
    if ref.status != EventStatus.LIVE:
        return Decision.deny("event_not_live" if not ref.status.is_finished else "event_finished")
    if ref.publisher_id not in (None, callback.client_id):
        return Decision.deny("publisher_replaced")
    return Decision.allow()


def _play(state: StreamingState, ref: EventRef, callback: MediaCallback) -> Decision:
    if callback.kind == CallbackKind.PLAYBACK:
        return _viewer(state, ref, callback.playback_token)  # recordings: whatever the status
    if not ref.status.is_on_air:
        return Decision.deny("event_finished" if ref.status.is_finished else "event_not_live")
    token = callback.playback_token
    if token and token.startswith(INTERNAL_PULL_PREFIX):
        # BigfootLive's own transcoder or recorder, for every visibility (never a viewer).
        alive = callback.kind == CallbackKind.PLAYER_ALIVE
        if state.playback_tokens.verify_internal_pull(token, ref.playback_id, allow_expired=alive):
            return Decision.allow()
        return Decision.deny("invalid_pull_credential")
    return _viewer(state, ref, token)


def _viewer(state: StreamingState, ref: EventRef, token: str | None) -> Decision:
    """A viewer (not our own pull): public events are open, others need the event's token."""
    if ref.visibility == Visibility.PUBLIC:
        return Decision.allow()
    if not token:
        return Decision.deny("playback_token_required")
    try:
        claims = state.playback_tokens.verify_for(token, ref.id)
    except InvalidPlaybackToken as exc:
        return Decision.deny(exc.code)
    if claims.playback_id != ref.playback_id:
        return Decision.deny(InvalidPlaybackToken.code)
    return Decision.allow()


async def stream_health(state: StreamingState, event: Event) -> HealthReport:
    """The stream's health now; a verdict read fresh from the media server also goes into the
    event's per-minute health history."""
    report = await state.stream_health.report(
        event.playback_id, on_air=EventStatus(event.status).is_on_air
    )
    if report.fresh:
        current = report.current or {}
        sample = HealthSample(
            status=report.verdict,
            reasons=report.reasons,
            bitrate_kbps=current.get("bitrate_kbps"),
            fps=current.get("fps"),
            width=current.get("width"),
            height=current.get("height"),
            viewers=current.get("viewers"),
        )
        try:
            await analytics.record_health(
                state, event_id=event.id, tenant_id=event.tenant_id, sample=sample, at=utcnow()
            )
        except Exception:  # the answer matters more than its record
            log.exception("health_record_failed", event_id=str(event.id))
    return report
