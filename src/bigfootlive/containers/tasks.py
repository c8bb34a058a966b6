"""The manager's place in the app lifespan, and the choice of runtime."""

from __future__ import annotations

import asyncio

from bigfootlive.containers.base import Runtime
from bigfootlive.containers.manager import ContainerManager
from bigfootlive.state import AppState


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


def start_manager(state: AppState) -> tuple[ContainerManager, asyncio.Task[None]] | None:
    """Every API process runs the loop; the lease makes one of them the leader."""
    if not state.settings.container_manager_enabled:
        return None
    manager = ContainerManager(state, make_runtime(state))
    state.containers = manager
    return manager, asyncio.create_task(manager.run(), name="container-manager")
