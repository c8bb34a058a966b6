"""The task and cron registries. Declaring a task binds it to no broker: each `JobQueue`
declares every registered task as a Dramatiq actor on its own broker, so tests and processes
can run several queues side by side."""

from __future__ import annotations

import enum
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

StateT = TypeVar("StateT")

# Every module that declares tasks or cron entries; imported when a queue is built.
TASK_MODULES = (
    "bigfootlive.jobs.tasks",
    "bigfootlive.identity.tasks",
    "bigfootlive.webhooks.tasks",
    "bigfootlive.notifications.tasks",
    "bigfootlive.analytics.tasks",
    "bigfootlive.containers.tasks",
    "bigfootlive.sso.tasks",
)


class Priority(enum.StrEnum):
    """One broker queue per priority; a worker runs a higher one first when both wait."""

    HIGH = "high"
    DEFAULT = "default"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Dramatiq priority: lower runs first among prefetched messages."""
        return {"high": 0, "default": 50, "low": 100}[self.value]


@dataclass(frozen=True, slots=True)
class JobContext(Generic[StateT]):
    """What a running task gets besides its arguments. `state` is the process state the queue
    was bound to (`composition.AppState`); tasks declare it: `ctx: JobContext[AppState]`."""

    state: StateT
    task: str
    message_id: str
    attempt: int  # 1 on the first run
    max_attempts: int

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


TaskFn = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    fn: TaskFn
    priority: Priority = Priority.DEFAULT
    max_retries: int | None = None  # None: JOBS_MAX_RETRIES
    time_limit: float | None = None  # seconds; None: JOBS_TIME_LIMIT_SECONDS
    min_backoff_ms: int | None = None
    max_backoff_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CronSpec:
    name: str
    expression: str  # five fields, or six with seconds last (croniter)
    task: Task
    kwargs: dict[str, Any] = field(default_factory=dict)


TASKS: dict[str, Task] = {}
CRONS: dict[str, CronSpec] = {}


def task(
    name: str | None = None,
    *,
    priority: Priority = Priority.DEFAULT,
    max_retries: int | None = None,
    time_limit: float | None = None,
    min_backoff_ms: int | None = None,
    max_backoff_ms: int | None = None,
) -> Callable[[TaskFn], Task]:
    """Register `async def fn(ctx: JobContext, **kwargs)`; kwargs must be JSON values."""

    def register(fn: TaskFn) -> Task:
        full = name or f"{fn.__module__.removeprefix('bigfootlive.')}.{fn.__name__}"
        spec = Task(
            name=full,
            fn=fn,
            priority=priority,
            max_retries=max_retries,
            time_limit=time_limit,
            min_backoff_ms=min_backoff_ms,
            max_backoff_ms=max_backoff_ms,
        )
        existing = TASKS.get(full)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"task {full!r} is already registered")
        TASKS[full] = spec
        return spec

    return register


def cron(expression: str, target: Task, *, name: str | None = None, **kwargs: Any) -> CronSpec:
    from croniter import croniter

    if not croniter.is_valid(expression):
        raise ValueError(f"invalid cron expression {expression!r}")
    spec = CronSpec(name=name or target.name, expression=expression, task=target, kwargs=kwargs)
    CRONS[spec.name] = spec
    return spec


def load_tasks(extra: tuple[str, ...] | list[str] = ()) -> None:
    for module in (*TASK_MODULES, *extra):
        importlib.import_module(module)
