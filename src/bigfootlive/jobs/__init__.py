"""Background jobs on Dramatiq: queue machinery only; each domain keeps its tasks in tasks.py.

from bigfootlive.jobs import JobContext, task

@task(priority=Priority.HIGH, max_retries=5)
async def deliver(ctx: JobContext, *, delivery_id: str) -> None: ...

enqueue_after_commit(session, deliver, delivery_id=str(row.id))
"""

from bigfootlive.jobs.outbox import enqueue_after_commit
from bigfootlive.jobs.queue import JobQueue
from bigfootlive.jobs.registry import CronSpec, JobContext, Priority, Task, cron, task

__all__ = [
    "CronSpec",
    "JobContext",
    "JobQueue",
    "Priority",
    "Task",
    "cron",
    "enqueue_after_commit",
    "task",
]
