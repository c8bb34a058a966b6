"""SSO jobs: the IdP metadata refresh (see sso/refresh.py), one job per provider."""

from __future__ import annotations

import uuid

from bigfootlive.composition import AppState
from bigfootlive.jobs.outbox import enqueue_after_commit
from bigfootlive.jobs.registry import JobContext, Priority, cron, task
from bigfootlive.sso import refresh
from bigfootlive.sso import repository as repo

# A job's fetches are cut off after refresh.REFRESH_BUDGET_SECONDS and recorded as an error;
# the time limit only catches what that leaves (a stuck database, say).
REFRESH_TIME_LIMIT = refresh.REFRESH_BUDGET_SECONDS + 30


@task(priority=Priority.LOW, max_retries=2, time_limit=REFRESH_TIME_LIMIT)
async def refresh_provider_metadata(ctx: JobContext[AppState], *, provider_id: str) -> None:
    """Fetch one provider's published metadata again. An unreachable or invalid IdP is recorded
    on the provider, not retried: the next scheduled run tries again. Running it twice is
    harmless (the latest good copy wins)."""
    await refresh.refresh_provider(ctx.state, uuid.UUID(provider_id))


@task(priority=Priority.LOW)
async def refresh_sso_metadata(ctx: JobContext[AppState]) -> None:
    """One `refresh_provider_metadata` job per enabled OIDC and SAML provider, so a slow IdP
    holds up only its own job."""
    async with ctx.state.db.transaction() as session:
        for provider_id in await repo.providers_to_refresh(session):
            enqueue_after_commit(session, refresh_provider_metadata, provider_id=str(provider_id))


# Well inside oidc.METADATA_TTL (1 h): three runs can fail before a cached copy would expire,
# and a failed run extends it (refresh.STALE_LIMIT).
cron("*/15 * * * *", refresh_sso_metadata)
