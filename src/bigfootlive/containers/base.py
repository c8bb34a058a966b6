"""The runtime interface: where an event's worker runs (a task, a process, a Pod).

A runtime launches and stops workers and reports what it sees; it keeps no rules. The manager
(`manager.py`) decides what should run, and the database row (`EventContainer`) is the record.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from typing import Protocol


class RunState(enum.StrEnum):
    PENDING = "pending"  # created, not yet running (a Pod being scheduled)
    RUNNING = "running"
    EXITED = "exited"  # ended by itself with status 0 (its event ended, or drained)
    FAILED = "failed"  # crashed, killed, or exited non-zero


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    owner: str  # the manager (node) that launched it; written as a label/annotation
    generation: str  # this launch's token: the worker may write the row only while it matches


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    event_id: uuid.UUID
    handle: str  # task name, pid, or Pod name
    state: RunState
    started_at: dt.datetime | None = None
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class ContainerStats:
    cpu_percent: float  # of one core
    memory_bytes: int
    extra: dict[str, float] = field(default_factory=dict)


class Runtime(Protocol):
    name: str

    async def launch(self, spec: ContainerSpec) -> ContainerInfo:
        """Start the event's worker; a second launch for a running event returns it as is."""
        ...

    async def stop(self, event_id: uuid.UUID, *, grace_seconds: float) -> None:
        """Ask the worker to drain (SIGTERM), then kill it after `grace_seconds`."""
        ...

    async def status(self, event_id: uuid.UUID) -> ContainerInfo | None: ...

    async def stats(self, event_id: uuid.UUID) -> ContainerStats | None: ...

    async def list(self) -> list[ContainerInfo]:
        """Every worker this runtime knows of, running or finished but not yet forgotten."""
        ...

    async def forget(self, event_id: uuid.UUID) -> None:
        """Drop a finished worker from `list` (the manager has recorded its end)."""
        ...

    async def close(self) -> None: ...
