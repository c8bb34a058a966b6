"""The embedded runtime: each event's worker is an asyncio task in this process."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from bigfootlive.containers.base import ContainerInfo, ContainerSpec, ContainerStats, RunState
from bigfootlive.containers.worker import EventWorker
from bigfootlive.db import utcnow
from bigfootlive.streaming.ports import StreamingState


class _Entry:
    def __init__(self, worker: EventWorker, task: asyncio.Task[int], spec: ContainerSpec) -> None:
        self.worker = worker
        self.task = task
        self.spec = spec
        self.started_at = utcnow()


class InProcessRuntime:
    name = "inprocess"

    def __init__(self, state: StreamingState) -> None:
        self.state = state
        self._entries: dict[uuid.UUID, _Entry] = {}

    async def launch(self, spec: ContainerSpec) -> ContainerInfo:
        entry = self._entries.get(spec.event_id)
        if entry is not None and not entry.task.done():
            return self._info(entry)
        # The API process's own CPU is not the event's: only its ffmpeg child is measured.
        worker = EventWorker(self.state, spec.event_id, handle=spec.generation,
                             measure_process=False)  # fmt: skip
        task = asyncio.create_task(worker.run(), name=f"event-container-{spec.event_id}")
        entry = _Entry(worker, task, spec)
        self._entries[spec.event_id] = entry
        return self._info(entry)

    async def stop(self, event_id: uuid.UUID, *, grace_seconds: float) -> None:
        entry = self._entries.get(event_id)
        if entry is None or entry.task.done():
            return
        entry.worker.stop("stopped_by_manager")
        try:
            await asyncio.wait_for(asyncio.shield(entry.task), grace_seconds)
        except TimeoutError:
            entry.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await entry.task
        except Exception:  # noqa: S110 - a crashed worker is reported by status()
            pass

    async def status(self, event_id: uuid.UUID) -> ContainerInfo | None:
        entry = self._entries.get(event_id)
        return None if entry is None else self._info(entry)

    async def stats(self, event_id: uuid.UUID) -> ContainerStats | None:
        entry = self._entries.get(event_id)
        if entry is None or entry.task.done():
            return None
        cpu, memory = entry.worker._resources()
        return ContainerStats(cpu_percent=cpu, memory_bytes=memory)

    async def list(self) -> list[ContainerInfo]:
        return [self._info(e) for e in self._entries.values()]

    async def forget(self, event_id: uuid.UUID) -> None:
        entry = self._entries.get(event_id)
        if entry is not None and entry.task.done():
            del self._entries[event_id]

    async def close(self) -> None:
        await asyncio.gather(
            *(self.stop(e, grace_seconds=2.0) for e in list(self._entries)),
            return_exceptions=True,
        )
        self._entries.clear()

    def _info(self, entry: _Entry) -> ContainerInfo:
        task = entry.task
        if not task.done():
            state, code = RunState.RUNNING, None
        elif task.cancelled() or task.exception() is not None:
            state, code = RunState.FAILED, 1
        else:
            code = task.result()
            state = RunState.EXITED if code == 0 else RunState.FAILED
        return ContainerInfo(
            event_id=entry.spec.event_id,
            handle=task.get_name(),
            state=state,
            started_at=entry.started_at,
            exit_code=code,
        )
