"""What an event's worker uses: CPU and memory of its own process (when it has one to itself)
and of its ffmpeg child, for the heartbeat (psutil)."""

from __future__ import annotations

import contextlib
import os

import psutil


class ResourceMeter:
    def __init__(self, measure_process: bool) -> None:
        self.measure_process = measure_process
        self.process = psutil.Process(os.getpid())
        self._child: psutil.Process | None = None

    def prime(self) -> None:
        """Start measuring CPU from now (the first `cpu_percent(None)` always reads 0)."""
        self.process.cpu_percent(None)

    def measure(self, child_pid: int | None) -> tuple[float, int]:
        """(CPU percent, RSS bytes) since the previous call."""
        processes: list[psutil.Process] = []
        if self.measure_process:
            processes.append(self.process)
        if child_pid is not None:
            # One psutil.Process per child, kept across heartbeats: cpu_percent(None) measures
            # since the previous call on the same object (a new object always reads 0).
            if self._child is None or self._child.pid != child_pid:
                with contextlib.suppress(psutil.Error):
                    self._child = psutil.Process(child_pid)
                    self._child.cpu_percent(None)
            if self._child is not None and self._child.pid == child_pid:
                processes.append(self._child)
        cpu, memory = 0.0, 0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                cpu += process.cpu_percent(None)
                memory += process.memory_info().rss
        return cpu, memory
