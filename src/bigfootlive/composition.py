"""The composition root: builds the process state (infrastructure + domain services) and
wires the hooks through which domains react to each other. Every process builds its state
here (the API's lifespan, `bigfootlive worker`, the CLI, the event container).

Only edge modules (app, endpoints, tasks, gateway, CLI) import this module; services take
`state.Infrastructure`, or the protocol in their domain's `ports.py` that adds the domain
services they use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bigfootlive.analytics import service as analytics_service
from bigfootlive.analytics.ingest import BeaconBuffer
from bigfootlive.config import Settings
from bigfootlive.containers import retention
from bigfootlive.containers import service as containers_service
from bigfootlive.containers.hooks import CONTAINER_ROLLUP
from bigfootlive.containers.manager import ContainerManager
from bigfootlive.db import Database, utcnow
from bigfootlive.events.hooks import EVENT_STARTING, EVENT_STOPPED, EVENT_TRANSITIONED
from bigfootlive.events.playback import PlaybackTokens
from bigfootlive.identity.hooks import PASSWORD_SIGN_IN, SIGN_IN_CHALLENGE
from bigfootlive.identity.passwords import Passwords
from bigfootlive.identity.principals import PrincipalCache
from bigfootlive.identity.revocation import RevokedSessions
from bigfootlive.identity.tokens import TokenService
from bigfootlive.jobs import outbox
from bigfootlive.jobs.queue import JobQueue
from bigfootlive.kit.backends import Cache, PubSub, open_backends
from bigfootlive.kit.backends.redis import RedisCache
from bigfootlive.kit.crypto import SecretBox
from bigfootlive.kit.hooks import Hooks
from bigfootlive.kit.mail import Mailer, make_mailer
from bigfootlive.kit.ratelimit import RateLimiter
from bigfootlive.mfa import policy as mfa_policy
from bigfootlive.mfa.sms import SmsSender, make_sms_sender
from bigfootlive.realtime.hub import Hub
from bigfootlive.sso import policy as sso_policy
from bigfootlive.sso.policy_cache import SsoPolicyCache
from bigfootlive.streaming import kick as streaming_kick
from bigfootlive.streaming.health import HealthMonitor
from bigfootlive.streaming.health_setup import make_health_monitor
from bigfootlive.tenants.cache import TenantCache


def _single_redis_client(cache: Cache) -> Redis | None:
    """The app's client when the cache is one standalone Redis (shared by the rate limiter)."""
    if isinstance(cache, RedisCache) and isinstance(cache.client, Redis):
        return cache.client
    return None


@dataclass
class AppState:
    """The state of one process: `state.Infrastructure` and the domain services. It
    satisfies every domain's `ports` protocol (mypy checks it where it is passed)."""

    # infrastructure (state.Infrastructure)
    settings: Settings
    db: Database
    cache: Cache
    pubsub: PubSub
    limiter: RateLimiter
    mailer: Mailer
    secrets: SecretBox
    jobs: JobQueue
    # domain services
    passwords: Passwords
    tokens: TokenService
    revoked: RevokedSessions
    principals: PrincipalCache
    tenant_cache: TenantCache
    sso_policies: SsoPolicyCache
    beacons: BeaconBuffer
    playback_tokens: PlaybackTokens
    sms: SmsSender
    stream_health: HealthMonitor
    hub: Hub
    containers: ContainerManager | None = None  # set by the lifespan when the manager runs
    # "Now" for rules that count time down (sign-in lockout); tests replace it to move time.
    clock: Callable[[], dt.datetime] = utcnow
    hooks: Hooks = field(default_factory=Hooks)

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        cache, pubsub = open_backends(settings)
        db = Database.from_settings(settings)
        jobs = JobQueue(settings)
        # Services reach the queue through their session (`jobs.enqueue_after_commit`).
        db.sessionmaker.configure(info={"job_queue": jobs})
        state = cls(
            settings=settings,
            db=db,
            cache=cache,
            pubsub=pubsub,
            limiter=RateLimiter(
                settings.redis_url,
                settings.redis_key_prefix,
                cluster=settings.uses_redis_cluster,
                client=_single_redis_client(cache),
            ),
            mailer=make_mailer(settings),
            passwords=Passwords(settings),
            tokens=TokenService(settings),
            revoked=RevokedSessions(
                cache, ttl=settings.access_token_ttl_seconds + 60, pubsub=pubsub
            ),
            principals=PrincipalCache(cache, db, ttl=settings.auth_principal_ttl_seconds),
            tenant_cache=TenantCache(pubsub, ttl=settings.sign_in_policy_cache_seconds),
            sso_policies=SsoPolicyCache(pubsub, ttl=settings.sign_in_policy_cache_seconds),
            secrets=SecretBox(settings.data_keys),
            jobs=jobs,
            beacons=BeaconBuffer(
                cache,
                settings.analytics_flush_seconds,
                jobs,
                seen_ttl_seconds=settings.analytics_seen_ttl_seconds,
            ),
            playback_tokens=PlaybackTokens(settings),
            sms=make_sms_sender(settings),
            stream_health=make_health_monitor(settings),
            hub=Hub(
                pubsub,
                cache,
                queue_size=settings.ws_send_queue_size,
                batch_window=settings.ws_batch_window_ms / 1000,
                presence_interval=settings.presence_heartbeat_seconds,
                admission_ttl=settings.ws_admission_cache_seconds,
                heartbeat_seconds=settings.ws_heartbeat_seconds,
                idle_timeout_seconds=settings.ws_idle_timeout_seconds,
            ),
        )
        state.principals.watch(state.revoked)
        state.tenant_cache.watch(db.sessionmaker)
        state.sso_policies.watch(db.sessionmaker)
        state.hub.is_revoked = state.revoked.is_revoked
        wire_hooks(state.hooks, state.sso_policies)
        return state

    async def start_caches(self) -> None:
        """Listen for the invalidations of the in-process caches that need them (API
        processes: until then those caches keep nothing)."""
        await self.tenant_cache.local.start()
        await self.sso_policies.local.start()

    async def close(self) -> None:
        await self.beacons.stop()  # what is still buffered goes out before the queue closes
        await self.hub.close()
        self.principals.clear()
        await self.tenant_cache.local.stop()
        await self.sso_policies.local.stop()
        await self.jobs.close()
        await self.stream_health.close()
        await self.pubsub.close()
        await self.limiter.close()  # before the cache: it may share the cache's client
        await self.cache.close()
        await outbox.deleted_sent_rows(self.db.engine)  # else the relay would send them again
        await self.db.dispose()
        self.passwords.close()


def wire_hooks(hooks: Hooks, sso_policies: SsoPolicyCache) -> None:
    """Who reacts to what, across domains (see docs/architecture.md, "Hooks")."""
    # identity asks SSO and MFA at sign-in
    hooks.on(
        PASSWORD_SIGN_IN,
        lambda p: sso_policy.check_password_login(sso_policies, p.session, p.user),
    )
    hooks.answer(
        SIGN_IN_CHALLENGE,
        lambda s: mfa_policy.sign_in_challenge(
            s.state,
            s.session,
            user=s.user,
            tenant=s.tenant,
            meta=s.meta,
            amr=s.amr,
            known_usable_factors=s.usable_factors,
        ),
    )
    # events: compute capacity before arming; the summary and the HLS retention after an end
    hooks.on(EVENT_STARTING, containers_service.check_capacity)
    hooks.on(EVENT_TRANSITIONED, analytics_service.on_event_transition)
    hooks.on(EVENT_TRANSITIONED, retention.on_event_transition)
    # streaming: the media server drops the publisher of a stopped event
    hooks.on(
        EVENT_STOPPED,
        lambda s: streaming_kick.kick_publisher(s.state, s.event_id, s.playback_id, s.publisher_id),
    )
    # containers: every roll-up goes into the event's analytics
    hooks.on(
        CONTAINER_ROLLUP,
        lambda r: analytics_service.record_container_rollup(r.state, r.event_id, r.handoff),
    )
