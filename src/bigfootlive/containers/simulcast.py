"""Simulcast: the event's container restreams the ingest to each of its destinations.

One ffmpeg per destination pulls the ingest from the media server with the internal pull
credential (as the transcoder and recorder do) and copies it, without re-encoding, to the
destination as FLV over RTMP/RTMPS (`-c copy -f flv`). Each destination has its own state,
written to its row for the API: `connecting` (ffmpeg started), `live` (the destination accepted
the publish and bytes flow), `retrying` (it exited; another attempt after a back-off that
doubles up to SIMULCAST_RETRY_MAX_SECONDS), `failed` (SIMULCAST_MAX_ATTEMPTS attempts in a row
without going live), `stopped` (the event ended) and `idle` (disabled). The reason is ffmpeg's
last error line with the destination's key and the pull credential masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import select

from bigfootlive.authz.scoping import scoped
from bigfootlive.config import Settings
from bigfootlive.db import utcnow
from bigfootlive.events import simulcast as destinations
from bigfootlive.events.playback import INTERNAL_PULL_FLASHVER
from bigfootlive.events.schemas import EventStatus
from bigfootlive.events.simulcast_schemas import DestinationState, SimulcastStateMessage
from bigfootlive.kit.crypto import DecryptionError
from bigfootlive.models import Event
from bigfootlive.notifications.wire import user_channel
from bigfootlive.streaming.ports import StreamingState

log = structlog.get_logger(__name__)
S = DestinationState


def simulcast_channel(event_id: uuid.UUID) -> str:
    """Where each destination's state change is published (as `event:{id}:health` is)."""
    return f"event:{event_id}:simulcast"


def push_command(pull_url: str, push_url: str, *, ffmpeg: str = "ffmpeg") -> list[str]:
    """Copy the ingest to one destination; progress on stdout tells when bytes flow."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-rw_timeout", "10000000", "-rtmp_flashver", INTERNAL_PULL_FLASHVER, "-i", pull_url,
        "-map", "0:v?", "-map", "0:a?", "-c", "copy",
        "-progress", "pipe:1", "-stats_period", "1",
        "-rw_timeout", "10000000", "-f", "flv", push_url,
    ]  # fmt: skip


def backoff(settings: Settings, failures: int) -> float:
    """Seconds before attempt `failures + 1`: doubling from the minimum, capped."""
    delay = settings.simulcast_retry_min_seconds * 2 ** max(failures - 1, 0)
    return float(min(delay, settings.simulcast_retry_max_seconds))


@dataclass(frozen=True)
class Target:
    id: uuid.UUID
    push_url: str
    secret: str  # masked out of every reason
    fingerprint: str  # url + key ciphertext: a change restarts the push


class Pusher:
    """Keeps one destination's ffmpeg running while the event is on air."""

    def __init__(
        self,
        settings: Settings,
        target: Target,
        pull_url: Callable[[], str],
        report: Callable[[uuid.UUID, DestinationState, str | None, int], object],
    ) -> None:
        self.settings = settings
        self.target = target
        self.pull_url = pull_url
        self.report = report
        self.process: asyncio.subprocess.Process | None = None
        self.attempts = 0
        self.gave_up = False  # `failed`: kept as such (with its reason) after the event
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"simulcast-{self.target.id}")

    async def _say(self, state: DestinationState, reason: str | None) -> None:
        outcome = self.report(self.target.id, state, reason, self.attempts)
        if asyncio.iscoroutine(outcome):
            await outcome

    async def _supervise(self) -> None:
        failures = 0  # attempts in a row that never went live
        while not self._stopping:
            self.attempts += 1
            await self._say(S.CONNECTING, None)
            pull = self.pull_url()
            went_live, reason = await self._attempt(pull)
            if self._stopping:
                return
            failures = 0 if went_live else failures + 1
            limit = self.settings.simulcast_max_attempts
            if limit and failures >= limit:
                self.gave_up = True
                await self._say(S.FAILED, reason)
                log.info("simulcast_failed", destination=str(self.target.id), reason=reason)
                return
            await self._say(S.RETRYING, reason)
            await asyncio.sleep(backoff(self.settings, failures))

    async def _attempt(self, pull: str) -> tuple[bool, str]:
        self.process = process = await asyncio.create_subprocess_exec(
            *push_command(pull, self.target.push_url, ffmpeg=self.settings.ffmpeg_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        went_live = False
        if process.stdout is None or process.stderr is None:  # pragma: no cover - PIPE given
            raise RuntimeError("ffmpeg pipes missing")
        errors = asyncio.create_task(process.stderr.read())
        async for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            if not went_live and line.startswith("total_size=") and line[11:].isdigit():
                if int(line[11:]) > 0:
                    went_live = True
                    await self._say(S.LIVE, None)
        stderr = await errors
        await process.wait()
        return went_live, self._reason(stderr.decode(errors="replace"), pull, process.returncode)

    def _reason(self, stderr: str, pull: str, exit_code: int | None) -> str:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"ffmpeg exited with status {exit_code}"
        for secret in (self.target.push_url, pull, pull.split("?", 1)[-1], self.target.secret):
            if secret:
                reason = reason.replace(secret, "***")
        return reason[:300]

    async def stop(self, grace_seconds: float = 5.0) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), grace_seconds)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            # gather, not suppress(CancelledError): a cancel of the caller itself must propagate.
            await asyncio.gather(self._task, return_exceptions=True)


class Restreamer:
    """The event's pushers: started when it goes on air, kept in line with its destinations
    (added, removed, disabled, key or URL changed) and stopped when it ends."""

    def __init__(
        self,
        state: StreamingState,
        tenant_id: uuid.UUID,
        event_id: uuid.UUID,
        pull_url: Callable[[], str],
    ) -> None:
        self.state = state
        self.tenant_id = tenant_id
        self.event_id = event_id
        self.pull_url = pull_url
        self.pushers: dict[uuid.UUID, Pusher] = {}
        self._owner_id: uuid.UUID | None = None  # told of each state change (system message)
        self._names: dict[uuid.UUID, str] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    async def follow(self, status: EventStatus) -> None:
        """Called on every status the worker sees."""
        if status.is_finished:
            await self.close()
        elif status.is_on_air:
            async with self._lock:
                if not self._closed:
                    await self._sync()

    async def _sync(self) -> None:
        wanted: dict[uuid.UUID, Target] = {}
        idle: list[uuid.UUID] = []
        async with self.state.db.transaction() as session:
            rows = await destinations.list_for_event(session, self.tenant_id, self.event_id)
            self._owner_id = await session.scalar(
                scoped(select(Event.owner_id), Event, self.tenant_id).where(
                    Event.id == self.event_id
                )
            )
            for row in rows:
                self._names[row.id] = row.name
                if not row.enabled:
                    if row.state != S.IDLE.value:
                        idle.append(row.id)
                    continue
                try:
                    key = destinations.stream_key_of(self.state.secrets, row)
                except DecryptionError:
                    log.warning("simulcast_key_unreadable", destination=str(row.id))
                    continue
                wanted[row.id] = Target(
                    id=row.id,
                    push_url=destinations.push_url(row, key),
                    secret=key,
                    fingerprint=f"{row.url}|{row.key_ciphertext}",
                )
        for destination_id, pusher in list(self.pushers.items()):
            target = wanted.get(destination_id)
            if target is None or target.fingerprint != pusher.target.fingerprint:
                await self.pushers.pop(destination_id).stop()
                if target is None:
                    idle.append(destination_id)
        for destination_id in idle:
            await self._report(destination_id, S.IDLE, None, 0)
        for destination_id, target in wanted.items():
            if destination_id not in self.pushers:
                pusher = Pusher(self.state.settings, target, self.pull_url, self._report)
                self.pushers[destination_id] = pusher
                pusher.start()

    async def close(self) -> None:
        """Stop every push (the event ended, or the worker drains)."""
        async with self._lock:
            self._closed = True
            pushers, self.pushers = self.pushers, {}
            for destination_id, pusher in pushers.items():
                await pusher.stop()
                if not pusher.gave_up:
                    await self._report(destination_id, S.STOPPED, None, pusher.attempts)

    async def _report(
        self, destination_id: uuid.UUID, state: DestinationState, reason: str | None, attempts: int
    ) -> None:
        try:
            async with self.state.db.transaction() as session:
                await destinations.set_state(
                    session, self.tenant_id, destination_id, state,
                    reason=reason, attempts=attempts, at=utcnow(),
                )  # fmt: skip
        except Exception:
            log.exception("simulcast_state_write_failed", destination=str(destination_id))
        message = {"event_id": str(self.event_id), "destination_id": str(destination_id),
                   "state": state.value, "reason": reason, "attempts": attempts}  # fmt: skip
        with contextlib.suppress(Exception):
            await self.state.pubsub.publish(
                simulcast_channel(self.event_id), json.dumps(message).encode()
            )
        if self._owner_id is not None:
            name = self._names.get(destination_id, "a destination")
            told = SimulcastStateMessage(
                event_id=self.event_id, destination_id=destination_id, name=name, state=state,
                reason=reason, attempts=attempts, at=utcnow(),
                text=f"Simulcast to {name}: {state.value}" + (f" ({reason})" if reason else ""),
            )  # fmt: skip
            with contextlib.suppress(Exception):
                await self.state.pubsub.publish(
                    user_channel(self._owner_id), told.model_dump_json().encode()
                )
        log.info(
            "simulcast_state", event_id=str(self.event_id), destination=str(destination_id),
            state=state.value, reason=reason,
        )  # fmt: skip
