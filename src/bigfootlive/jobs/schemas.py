from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel


class DeadJobOut(BaseModel):
    id: uuid.UUID
    message_id: str
    queue: str
    task: str
    arguments: dict[str, Any]
    attempts: int
    error: str
    failed_at: dt.datetime


class QueueDepth(BaseModel):
    queued: int
    delayed: int


class TaskCounts(BaseModel):
    queue: str
    enqueued: int
    running: int
    succeeded: int
    failed: int
    dead: int


class JobStats(BaseModel):
    broker: str
    queues: dict[str, QueueDepth]
    tasks: dict[str, TaskCounts]
    dead_letters: int


class RetryAccepted(BaseModel):
    message_id: str
