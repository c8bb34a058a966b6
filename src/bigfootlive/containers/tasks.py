"""The manager's place in the app lifespan, the choice of runtime, and the domain's jobs."""

from __future__ import annotations

import uuid

from bigfootlive.composition import AppState
from bigfootlive.containers import cutting, retention
from bigfootlive.containers.base import Runtime
from bigfootlive.containers.clips import CUT_CLIP_TASK
from bigfootlive.containers.manager import ContainerManager
from bigfootlive.containers.retention import PURGE_EVENT_HLS_TASK
from bigfootlive.jobs.registry import JobContext, Priority, cron, task
from bigfootlive.kit.periodic import Periodic


def make_runtime(state: AppState) -> Runtime:
    kind = state.settings.container_runtime
    if kind == "subprocess":
        from bigfootlive.containers.subprocess import SubprocessRuntime

        return SubprocessRuntime(state.settings)
    if kind == "kubernetes":
        from bigfootlive.containers.kubernetes import KubernetesRuntime

        return KubernetesRuntime(state.settings)
    from bigfootlive.containers.inprocess import InProcessRuntime

    return InProcessRuntime(state)


def start_manager(state: AppState) -> tuple[ContainerManager, Periodic] | None:
    """Every API process runs the loop; the lease makes one of them the leader."""
    if not state.settings.container_manager_enabled:
        return None
    manager = ContainerManager(state, make_runtime(state))
    state.containers = manager
    loop = Periodic(
        "container-manager", manager.tick, state.settings.container_reconcile_interval_seconds
    )
    loop.start()
    return manager, loop


@task(PURGE_EVENT_HLS_TASK, priority=Priority.LOW)
async def purge_event_hls(ctx: JobContext[AppState], *, event_id: str) -> None:
    """An ended event's live HLS, once HLS_RETENTION_HOURS are over (VOD is kept)."""
    await retention.purge_event(ctx.state, uuid.UUID(event_id))


@task(CUT_CLIP_TASK, priority=Priority.DEFAULT, time_limit=900)
async def cut_clip(ctx: JobContext[AppState], *, clip_id: str) -> None:
    """Cut a pending clip into its own VOD asset with a poster (cutting.py); idempotent."""
    await cutting.cut_clip(ctx.state, uuid.UUID(clip_id))


@task(priority=Priority.LOW, time_limit=1800)
async def sweep_hls_retention(ctx: JobContext[AppState]) -> None:
    """The safety net of `purge_event_hls`: every event whose retention ended in the last week."""
    await retention.sweep(ctx.state)


cron("41 * * * *", sweep_hls_retention)
