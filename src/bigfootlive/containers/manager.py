"""The container manager: a reconcile loop, like a Kubernetes controller.

Every `CONTAINER_RECONCILE_INTERVAL_SECONDS` the leader (one API process, chosen by a lease)
compares what should run — a container for every event that is armed or on air, or scheduled
to start within `CONTAINER_PREWARM_SECONDS` — with what the runtime reports, and closes the gap:

- an event without a container gets one;
- a container that crashed (or whose heartbeat stopped) is restarted after an exponential
  back-off (`restarts` counts them);
- a container whose event has ended is left `CONTAINER_STOP_GRACE_SECONDS` to drain (the worker
  usually exits by itself first: final roll-up, VOD), then stopped;
- a container nobody wants (no row, event gone, no longer pre-warmed) is stopped: an orphan.

Row writes happen before runtime actions, so a worker never starts without its row and a new
launch token (`generation`) fences off any older worker of the same event.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import time
import uuid
from dataclasses import dataclass, field

import structlog

from bigfootlive.containers import repository as repo
from bigfootlive.containers.base import ContainerInfo, ContainerSpec, RunState, Runtime
from bigfootlive.containers.lease import DatabaseLease
from bigfootlive.db import utcnow
from bigfootlive.events.schemas import EventStatus
from bigfootlive.models import EventContainer
from bigfootlive.streaming.ports import StreamingState

log = structlog.get_logger(__name__)

LEASE_NAME = "container-manager"
LIVE_STATES = {RunState.RUNNING, RunState.PENDING}
# Stops that are not failures: the next launch does not count as a restart.
PLANNED_STOPS = {"not_needed", "stopped_by_manager", "terminated", "grace_expired"}


@dataclass
class ReconcileReport:
    desired: int = 0
    running: int = 0
    launched: list[uuid.UUID] = field(default_factory=list)
    restarted: list[uuid.UUID] = field(default_factory=list)
    stopped: list[uuid.UUID] = field(default_factory=list)
    reaped: list[uuid.UUID] = field(default_factory=list)
    waiting: int = 0  # crashed, in back-off
    seconds: float = 0.0


@dataclass
class _Plan:
    launch: list[ContainerSpec] = field(default_factory=list)
    stop: list[tuple[uuid.UUID, float]] = field(default_factory=list)
    forget: list[uuid.UUID] = field(default_factory=list)


def node_name(state: StreamingState) -> str:
    return state.settings.container_node_name or socket.gethostname()


def backoff(settings_base: float, settings_max: float, restarts: int) -> float:
    return float(min(settings_max, settings_base * (2 ** max(0, restarts - 1))))


class ContainerManager:
    def __init__(
        self,
        state: StreamingState,
        runtime: Runtime,
        *,
        holder: str | None = None,
        lease: DatabaseLease | None = None,
    ) -> None:
        self.state = state
        self.settings = state.settings
        self.runtime = runtime
        self.node = node_name(state)
        self.holder = holder or f"{self.node}:{uuid.uuid4().hex[:8]}"
        self.lease = lease or DatabaseLease(
            state.db, LEASE_NAME, self.holder, self.settings.container_lease_ttl_seconds
        )
        self.is_leader = False
        self.last_report: ReconcileReport | None = None

    async def tick(self) -> ReconcileReport | None:
        """One round: renew (or try to take) the lease, and reconcile while leader."""
        leader = await self.lease.acquire()
        if leader != self.is_leader:
            log.info("container_manager_leadership", leader=leader, holder=self.holder)
            self.is_leader = leader
            adopt = getattr(self.runtime, "adopt", None)
            if leader and adopt is not None:
                # Workers of a previous leader on this machine keep running: take them over.
                log.info("containers_adopted", count=adopt())
            warm = getattr(self.runtime, "warm", None)
            if leader and warm is not None:
                warm()  # ready before the first event needs a worker (the subprocess template)
        if not leader:
            return None
        self.last_report = await self.reconcile()
        return self.last_report

    async def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self.lease.release()
        await self.runtime.close()

    # --- the reconcile step -------------------------------------------------------------

    async def reconcile(self) -> ReconcileReport:
        started = time.perf_counter()
        report = ReconcileReport()
        now = utcnow()
        prewarm = dt.timedelta(seconds=self.settings.container_prewarm_seconds)
        actual = {info.event_id: info for info in await self.runtime.list()}
        plan = _Plan()
        async with self.state.db.transaction() as session:
            desired = dict(await repo.desired_events(session, now + prewarm))
            rows = {r.event_id: r for r in await repo.containers_for(session, list(desired))}
            others = (rows.keys() | actual.keys()) - desired.keys()
            events = await repo.event_states(session, list(others))
            report.desired = len(desired)
            running = sum(1 for i in actual.values() if i.state in LIVE_STATES)
            for event_id, tenant_id in desired.items():
                row = rows.get(event_id)
                info = actual.get(event_id)
                if row is None:
                    if running >= self.settings.container_max_per_node:
                        log.warning("container_node_full", event_id=str(event_id))
                        continue
                    row = EventContainer(
                        tenant_id=tenant_id,
                        event_id=event_id,
                        runtime=self.runtime.name,
                        node=self.node,
                        state="starting",
                        worker_state={},
                    )
                    session.add(row)
                    self._launch(row, now, plan)
                    report.launched.append(event_id)
                    running += 1
                    continue
                self._desired_row(row, info, now, plan, report)
            for event_id in others:
                self._undesired(
                    event_id, rows.get(event_id), actual.get(event_id), events, now, plan, report
                )
        for event_id, grace in plan.stop:
            await self.runtime.stop(event_id, grace_seconds=grace)
        for event_id in plan.forget:
            await self.runtime.forget(event_id)
        for spec in plan.launch:
            try:
                await self.runtime.launch(spec)
            except Exception:
                log.exception("container_launch_failed", event_id=str(spec.event_id))
                await self._mark_launch_failed(spec)
        await self._refresh_stats(actual)
        report.running = sum(1 for i in await self.runtime.list() if i.state in LIVE_STATES)
        report.seconds = time.perf_counter() - started
        return report

    def _launch(self, row: EventContainer, now: dt.datetime, plan: _Plan) -> None:
        generation = f"{self.runtime.name}:{uuid.uuid4().hex[:16]}"
        row.handle = generation
        row.state = "starting"
        row.runtime = self.runtime.name
        row.node = self.node
        row.next_restart_at = None
        row.stopped_at = None
        row.stop_reason = None
        row.updated_at = now
        plan.forget.append(row.event_id)
        plan.launch.append(
            ContainerSpec(
                event_id=row.event_id,
                tenant_id=row.tenant_id,
                owner=self.holder,
                generation=generation,
            )
        )

    def _heartbeat_age(self, row: EventContainer, now: dt.datetime) -> float:
        seen = row.last_heartbeat_at or row.updated_at or row.created_at
        return (now - seen).total_seconds()

    def _crashed(self, row: EventContainer, now: dt.datetime, reason: str) -> None:
        row.restarts += 1
        row.state = "crashed"
        row.stop_reason = reason
        row.stopped_at = now
        delay = backoff(
            self.settings.container_restart_backoff_seconds,
            self.settings.container_restart_backoff_max_seconds,
            row.restarts,
        )
        row.next_restart_at = now + dt.timedelta(seconds=delay)
        log.warning(
            "container_crashed",
            event_id=str(row.event_id),
            reason=reason,
            restarts=row.restarts,
            retry_in=delay,
        )

    def _desired_row(
        self,
        row: EventContainer,
        info: ContainerInfo | None,
        now: dt.datetime,
        plan: _Plan,
        report: ReconcileReport,
    ) -> None:
        timeout = self.settings.container_heartbeat_timeout_seconds
        if row.state == "starting":
            timeout = max(timeout, self.settings.container_start_timeout_seconds)
        age = self._heartbeat_age(row, now)
        if info is not None and info.state in LIVE_STATES:
            if row.state in ("running", "starting") and age > timeout:
                # Alive but silent: hung, or cut off from the database. Replace it.
                plan.stop.append((row.event_id, 1.0))
                self._crashed(row, now, "heartbeat_lost")
                report.waiting += 1
            return
        if row.state in ("running", "starting"):
            if info is None and age <= timeout:
                return  # running elsewhere (another node's runtime), and alive
            reason = "heartbeat_lost" if info is None else f"exit_{info.exit_code}"
            if info is not None and info.state == RunState.EXITED and row.state == "running":
                reason = "exited"
            self._crashed(row, now, reason)
        if row.state == "stopped":
            if row.stop_reason not in PLANNED_STOPS and row.stop_reason != "event_ended":
                self._crashed(row, now, row.stop_reason or "stopped")
            else:
                self._launch(row, now, plan)
                report.launched.append(row.event_id)
                return
        if row.state == "crashed":
            if row.next_restart_at is None or row.next_restart_at <= now:
                self._launch(row, now, plan)
                report.restarted.append(row.event_id)
            else:
                report.waiting += 1

    def _undesired(
        self,
        event_id: uuid.UUID,
        row: EventContainer | None,
        info: ContainerInfo | None,
        events: dict[uuid.UUID, tuple[str, dt.datetime | None]],
        now: dt.datetime,
        plan: _Plan,
        report: ReconcileReport,
    ) -> None:
        status, ended_at = events.get(event_id, (None, None))
        alive = info is not None and info.state in LIVE_STATES
        if row is None or status is None:
            # An orphan: a container with no record, or whose event no longer exists.
            if alive:
                plan.stop.append((event_id, 5.0))
                report.reaped.append(event_id)
            plan.forget.append(event_id)
            return
        finished = EventStatus(status).is_finished
        if alive:
            if finished:
                grace = self.settings.container_stop_grace_seconds
                if ended_at is not None and (now - ended_at).total_seconds() < grace:
                    return  # draining: final roll-up, recording -> VOD
                plan.stop.append((event_id, 5.0))
                self._stopped(row, now, "grace_expired")
            else:
                plan.stop.append((event_id, 10.0))
                self._stopped(row, now, "not_needed")
            report.stopped.append(event_id)
            plan.forget.append(event_id)
            return
        if info is None and row.state in ("running", "starting"):
            if self._heartbeat_age(row, now) <= self.settings.container_heartbeat_timeout_seconds:
                return  # alive elsewhere; its worker stops itself when the event ends
            report.reaped.append(event_id)
            self._stopped(row, now, "heartbeat_lost")
            return
        if row.state != "stopped":
            self._stopped(row, now, row.stop_reason or "event_ended")
            report.stopped.append(event_id)
        plan.forget.append(event_id)

    def _stopped(self, row: EventContainer, now: dt.datetime, reason: str) -> None:
        if row.state != "stopped":
            row.stop_reason = reason
            row.stopped_at = now
        row.state = "stopped"
        row.next_restart_at = None

    async def _mark_launch_failed(self, spec: ContainerSpec) -> None:
        async with self.state.db.transaction() as session:
            row = await repo.get_container(session, spec.event_id)
            if row is not None and row.handle == spec.generation:
                self._crashed(row, utcnow(), "launch_failed")

    async def _refresh_stats(self, actual: dict[uuid.UUID, ContainerInfo]) -> None:
        """Runtimes whose workers cannot measure themselves (a Pod's cgroup is only visible to
        the metrics API) report here."""
        if not getattr(self.runtime, "stats_from_runtime", False):
            return
        for event_id, info in actual.items():
            if info.state != RunState.RUNNING:
                continue
            stats = await self.runtime.stats(event_id)
            if stats is None:
                continue
            async with self.state.db.transaction() as session:
                await repo.update_container(
                    session,
                    event_id,
                    cpu_percent=round(stats.cpu_percent, 2),
                    memory_bytes=stats.memory_bytes,
                )
