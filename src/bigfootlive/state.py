"""The process-wide resources, built once at start-up and shared by every request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bigfootlive.analytics.ingest import BeaconBuffer
from bigfootlive.config import Settings
from bigfootlive.db import Database, utcnow
from bigfootlive.events.playback import PlaybackTokens
from bigfootlive.identity.passwords import Passwords
from bigfootlive.identity.revocation import RevokedSessions
from bigfootlive.identity.tokens import TokenService
from bigfootlive.jobs.queue import JobQueue
from bigfootlive.kit.backends import Cache, PubSub, open_backends
from bigfootlive.kit.crypto import SecretBox
from bigfootlive.kit.mail import Mailer, make_mailer
from bigfootlive.kit.ratelimit import RateLimiter
from bigfootlive.mfa.sms import SmsSender, make_sms_sender
from bigfootlive.realtime.hub import Hub
from bigfootlive.streaming.health import HealthMonitor, make_health_monitor

if TYPE_CHECKING:
    from bigfootlive.containers.manager import ContainerManager


@dataclass
class AppState:
    settings: Settings
    db: Database
    cache: Cache
    pubsub: PubSub
    limiter: RateLimiter
    mailer: Mailer
    passwords: Passwords
    tokens: TokenService
    revoked: RevokedSessions
    secrets: SecretBox
    jobs: JobQueue
    beacons: BeaconBuffer
    playback_tokens: PlaybackTokens
    sms: SmsSender
    stream_health: HealthMonitor
    hub: Hub
    containers: ContainerManager | None = None  # set by the lifespan when the manager runs
    # "Now" for rules that count time down (sign-in lockout); tests replace it to move time.
    clock: Callable[[], dt.datetime] = utcnow

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        cache, pubsub = open_backends(settings)
        db = Database.from_settings(settings)
        jobs = JobQueue(settings)
        # Services reach the queue through their session (`jobs.enqueue_after_commit`).
        db.sessionmaker.configure(info={"job_queue": jobs})
        return cls(
            settings=settings,
            db=db,
            cache=cache,
            pubsub=pubsub,
            limiter=RateLimiter(settings.redis_url, settings.redis_key_prefix),
            mailer=make_mailer(settings),
            passwords=Passwords(settings),
            tokens=TokenService(settings),
            revoked=RevokedSessions(
                cache, ttl=settings.access_token_ttl_seconds + 60, pubsub=pubsub
            ),
            secrets=SecretBox(settings.data_keys),
            jobs=jobs,
            beacons=BeaconBuffer(cache, settings.analytics_flush_seconds, jobs),
            playback_tokens=PlaybackTokens(settings),
            sms=make_sms_sender(settings),
            stream_health=make_health_monitor(settings),
            hub=Hub(
                pubsub,
                cache,
                queue_size=settings.ws_send_queue_size,
                batch_window=settings.ws_batch_window_ms / 1000,
                presence_interval=settings.presence_heartbeat_seconds,
            ),
        )

    async def close(self) -> None:
        await self.beacons.stop()  # what is still buffered goes out before the queue closes
        await self.hub.close()
        await self.jobs.close()
        await self.stream_health.close()
        await self.pubsub.close()
        await self.cache.close()
        await self.limiter.close()
        await self.db.dispose()
