"""What the containers domain needs from the process state: the infrastructure and the
domain services below (`composition.AppState` provides them)."""

from __future__ import annotations

from typing import Protocol

from bigfootlive.containers.manager import ContainerManager
from bigfootlive.streaming.ports import StreamingState


class ContainersState(StreamingState, Protocol):
    containers: ContainerManager | None  # None when this process runs no manager
