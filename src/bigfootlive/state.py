"""The process-wide infrastructure, built once at start-up and shared by every request:
settings, database, cache, pub/sub, rate limiter, mail, secrets, the job queue, the hook
registry and the clock.

Infrastructure only. The domain services built on it (tokens, the realtime hub, the
container manager, ...) are added by the composition root (`composition.AppState`); a
domain that uses one declares it in the protocol of its `ports.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from bigfootlive.config import Settings
from bigfootlive.db import Database
from bigfootlive.jobs.queue import JobQueue
from bigfootlive.kit.backends import Cache, PubSub
from bigfootlive.kit.crypto import SecretBox
from bigfootlive.kit.hooks import Hooks
from bigfootlive.kit.mail import Mailer
from bigfootlive.kit.ratelimit import RateLimiter


class Infrastructure(Protocol):
    settings: Settings
    db: Database
    cache: Cache
    pubsub: PubSub
    limiter: RateLimiter
    mailer: Mailer
    secrets: SecretBox
    jobs: JobQueue
    hooks: Hooks

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        """ "Now" for rules that count time down (sign-in lockout)."""
        ...
