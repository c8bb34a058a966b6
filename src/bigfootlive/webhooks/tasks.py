from __future__ import annotations

import uuid

from bigfootlive.composition import AppState
from bigfootlive.jobs.registry import JobContext, Priority, task
from bigfootlive.webhooks import service
from bigfootlive.webhooks.service import DELIVER_WEBHOOK_TASK


@task(DELIVER_WEBHOOK_TASK, priority=Priority.DEFAULT)
async def deliver_webhook(
    ctx: JobContext[AppState], *, delivery_id: str, manual: bool = False
) -> None:
    """POST one signed delivery; a non-2xx answer or a network error raises, so Dramatiq retries
    it with exponential back-off and jitter, then dead-letters it."""
    await service.attempt_delivery(
        ctx.state, uuid.UUID(delivery_id), last_attempt=ctx.is_last_attempt
    )
