"""The per-event worker: everything one event needs while it is on, and nothing else.

`bigfootlive container run --event ID` runs it in its own process (or Pod); the inprocess
runtime runs the same class as an asyncio task. It

- heartbeats into its `event_containers` row with its resource use (psutil) and the
  container-seconds it has used, and keeps there what it needs to resume (`worker_state`);
- monitors the stream's health from the media server's stats (`health.py`), publishes it on
  `event:{id}:health` and records it in the event's per-minute health history (analytics);
- rolls up the event's figures (peak viewers, bytes in, time on air, moderation counts) into
  `worker_state["rollup"]`, publishes them on `event:{id}:analytics` and hands them, with the
  per-minute figures since the last hand-off, to the `CONTAINER_ROLLUP` hook's handlers
  (analytics' `record_container_rollup`), once more when the worker drains;
- auto-moderates chat (`moderation.py`) from `event:{id}:chat:inbound`;
- while on air, keeps the DVR playlist and the live thumbnail (`previews.py`); optionally
  transcodes the ingest into an HLS ladder, or copies it into HLS (recording, or the 1 s
  segments of a low-latency event), and publishes the recording as VOD when it ends;
- drains and exits 0 on SIGTERM (or `stop()`) and when its event ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bigfootlive.analytics import service as analytics
from bigfootlive.authz.scoping import tenant_scope
from bigfootlive.chat.moderation import hide_flagged
from bigfootlive.containers import repository as repo
from bigfootlive.containers.health import (
    Health,
    HealthProbe,
    HealthTracker,
    NoProbe,
    ProbePace,
    health_sample,
    make_probe,
)
from bigfootlive.containers.hooks import CONTAINER_ROLLUP, Rollup
from bigfootlive.containers.moderation import (
    ChatAutoModerator,
    ChatMessage,
    inbound_channel,
    message_uuid,
    verdict_channel,
)
from bigfootlive.containers.previews import Previews
from bigfootlive.containers.resources import ResourceMeter
from bigfootlive.containers.simulcast import Restreamer
from bigfootlive.containers.storage import Storage, TreeSync, hls_dir_for, make_storage
from bigfootlive.containers.transcoder import (
    RECORDER_RENDITION,
    Transcoder,
    ffmpeg_command,
    ingest_pull_url,
    parse_renditions,
    recorder_command,
)
from bigfootlive.containers.vod import publish_recording
from bigfootlive.db import utcnow
from bigfootlive.events.latency import segment_seconds
from bigfootlive.events.playback import container_packages
from bigfootlive.events.schemas import EventStatus, LatencyMode
from bigfootlive.events.wire import state_channel
from bigfootlive.kit import jsonparse
from bigfootlive.kit.periodic import start_phase
from bigfootlive.models import EventContainer
from bigfootlive.streaming.ports import StreamingState

log = structlog.get_logger(__name__)


def health_channel(event_id: uuid.UUID) -> str:
    return f"event:{event_id}:health"


def analytics_channel(event_id: uuid.UUID) -> str:
    return f"event:{event_id}:analytics"


class FencedOff(Exception):
    """Another worker has taken over this event's row: this one must stop."""


class EventWorker:
    def __init__(
        self,
        state: StreamingState,
        event_id: uuid.UUID,
        *,
        handle: str,
        measure_process: bool = True,
        takeover: bool = False,
        probe: HealthProbe | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.state = state
        self.settings = state.settings
        self.event_id = event_id
        self.handle = handle
        self.measure_process = measure_process
        self.takeover = takeover
        self._last_ok = time.monotonic()
        self.probe = probe or make_probe(self.settings)  # NoProbe with MEDIA_SERVER_MODE=none
        self.phase = start_phase  # when in its interval each loop starts (a test may fix it)
        self._pace = ProbePace(self.settings.container_health_interval_seconds)
        self._storage = storage
        self.stopping = asyncio.Event()
        self.stop_reason = "terminated"
        self.worker_state: dict[str, Any] = {}
        self.transcoder: Transcoder | None = None
        self.restreamer: Restreamer | None = None  # simulcast, once the event is known
        self.previews: Previews | None = None  # DVR and thumbnails, once the event is known
        self.moderator = ChatAutoModerator(
            self.settings.chat_blocked_terms,
            flood_messages=self.settings.chat_flood_messages,
            flood_seconds=self.settings.chat_flood_seconds,
        )
        self._tracker = HealthTracker(self.settings.health_stale_seconds)
        self._meter = ResourceMeter(measure_process)
        self._last_tick = time.monotonic()
        self._event_status = EventStatus.SCHEDULED
        self._tenant_id: uuid.UUID | None = None
        self._playback_id = ""
        self._recording = False
        self._segment_seconds = self.settings.transcoder_segment_seconds  # per latency mode
        self._packages = False  # players read our HLS (a low-latency event): see hls_url
        self._sync: TreeSync | None = None
        # Per-minute figures not yet handed to the sinks: minute -> {"viewers", "chat_messages"}.
        self._minutes: dict[dt.datetime, dict[str, int]] = {}

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = make_storage(self.settings)
        return self._storage

    def stop(self, reason: str = "terminated") -> None:
        """Drain and exit (SIGTERM lands here)."""
        if not self.stopping.is_set():
            log.info("container_stopping", event_id=str(self.event_id), reason=reason)
            self.stop_reason = reason
            self.stopping.set()

    async def run(self) -> int:
        """Run until stopped or the event ends; 0 after a clean drain."""
        if not await self._claim():
            log.warning("container_event_missing", event_id=str(self.event_id))
            return 2
        log.info("container_started", event_id=str(self.event_id), handle=self.handle)
        # Claimed (the row says running) first; the subscriptions then go out together.
        unsubscribers = await asyncio.gather(
            self.state.pubsub.subscribe(inbound_channel(self.event_id), self._on_chat),
            self.state.pubsub.subscribe(state_channel(self.event_id), self._on_state),
        )
        loops = [
            asyncio.create_task(self._every(self.settings.container_heartbeat_interval_seconds,
                                            self._heartbeat), name="heartbeat"),
            asyncio.create_task(self._every(self.settings.container_health_interval_seconds,
                                            self._check_health, lambda: self._pace.wait),
                                name="health"),
            asyncio.create_task(self._every(self.settings.container_rollup_interval_seconds,
                                            self._rollup), name="rollup"),
        ]  # fmt: skip
        if self.settings.media_server_off:
            pass  # MEDIA_SERVER_MODE=none: no transcoder or recorder pulling the ingest
        elif self.settings.container_transcoder:
            self._start_transcoder()
        elif self._recording or self._packages:
            self._start_recorder()
        try:
            await self._react_to_status()
            await self.stopping.wait()
        finally:
            for task in loops:
                task.cancel()
            # gather, not suppress(CancelledError): a cancel of run() itself must propagate.
            await asyncio.gather(*loops, return_exceptions=True)
            for unsubscribe in unsubscribers:
                with contextlib.suppress(Exception):
                    await unsubscribe()
        return await self._drain()

    # --- start and stop ------------------------------------------------------------------

    async def _claim(self) -> bool:
        async with self.state.db.transaction() as session:
            event = await repo.get_event_unscoped(session, self.event_id)
            row = await repo.get_container(session, self.event_id)
            if event is None:
                return False
            if row is None:
                if not self.takeover:
                    return False
                row = EventContainer(
                    tenant_id=event.tenant_id,
                    event_id=event.id,
                    runtime="manual",
                    handle=self.handle,
                    worker_state={},
                )
                session.add(row)
                await session.flush()
            self._tenant_id = event.tenant_id
            if media := not self.settings.media_server_off:  # none: no ingest to pull from
                self.restreamer = Restreamer(self.state, event.tenant_id, event.id, self.pull_url)
            self._playback_id = event.playback_id
            self._recording = event.recording
            self._segment_seconds = segment_seconds(self.settings, LatencyMode(event.latency_mode))
            self._packages = container_packages(self.settings, event.latency_mode)
            self.previews = Previews(
                self.settings, hls_dir_for(self.settings, event.id, event.playback_id),
                self.pull_url, self._segment_seconds, event.dvr_window_seconds,
            ) if media else None  # fmt: skip
            self._event_status = EventStatus(event.status)
            self.worker_state = dict(row.worker_state or {})
            self.worker_state["runs"] = int(self.worker_state.get("runs", 0)) + 1
            self.moderator.counts.update(self.worker_state.get("moderation", {}))
            now = utcnow()
            claimed = await repo.update_container(
                session,
                self.event_id,
                handle=None if self.takeover else self.handle,
                handle_value=self.handle,
                state="running",
                started_at=now,
                last_heartbeat_at=now,
                stopped_at=None,
                stop_reason=None,
                worker_state=self.worker_state,
            )
        if not claimed:
            return False  # a newer launch of this event owns the row
        self._meter.prime()
        return True

    async def _drain(self) -> int:
        ended = self._event_status.is_finished
        if self.restreamer is not None:
            await self.restreamer.close()
        if self.previews is not None:
            await self.previews.close()
        if self.transcoder is not None:
            await self.transcoder.stop()
            if self._sync is not None:
                with contextlib.suppress(Exception):
                    await self._sync.sync()
        if ended and self._recording and self.transcoder is not None:
            await self._publish_vod()
        try:
            await self._rollup()  # the last minutes' figures
        except Exception:
            log.exception("container_final_rollup_failed", event_id=str(self.event_id))
        with contextlib.suppress(FencedOff):
            await self._heartbeat(final=True)
        log.info("container_stopped", event_id=str(self.event_id), reason=self.stop_reason)
        return 0

    async def _publish_vod(self) -> None:
        if self.transcoder is None or self._tenant_id is None:
            return
        try:
            async with self.state.db.transaction() as session:
                recording = await publish_recording(
                    self.settings,
                    session,
                    self.storage,
                    tenant_id=self._tenant_id,
                    event_id=self.event_id,
                    hls_dir=self.transcoder.out_dir,
                )
            if recording is not None:
                self.worker_state["vod"] = recording.playback_url
                log.info("vod_published", event_id=str(self.event_id), url=recording.playback_url)
        except Exception:
            log.exception("vod_publish_failed", event_id=str(self.event_id))

    def pull_url(self) -> str:
        """The ingest as our transcoder or recorder pulls it, with a short credential the
        media server's play callback accepts for every visibility (minted per run)."""
        url = ingest_pull_url(self.settings, self._playback_id)
        token = self.state.playback_tokens.issue_internal_pull(self._playback_id)
        return f"{url}{'&' if '?' in url else '?'}token={token}"

    def _start_transcoder(self) -> None:
        renditions = parse_renditions(self.settings.transcoder_renditions)
        out_dir = hls_dir_for(self.settings, self.event_id, self._playback_id)

        def command() -> list[str]:
            return ffmpeg_command(
                self.pull_url(),
                out_dir,
                renditions,
                segment_seconds=self._segment_seconds,
                record=self._recording,
                preset=self.settings.transcoder_preset,
                ffmpeg=self.settings.ffmpeg_path,
            )

        self._run_output(Transcoder(command, out_dir, renditions))

    def _start_recorder(self) -> None:
        """Recording, or low-latency packaging, without a ladder: a copy-only ffmpeg (no
        re-encode) cutting at the encoder's keyframes, every segment kept when recording."""
        out_dir = hls_dir_for(self.settings, self.event_id, self._playback_id)

        def command() -> list[str]:
            return recorder_command(
                self.pull_url(),
                out_dir,
                segment_seconds=self._segment_seconds,
                keep_all=self._recording,
                ffmpeg=self.settings.ffmpeg_path,
            )

        self._run_output(Transcoder(command, out_dir, [RECORDER_RENDITION], name="recorder"))

    def _run_output(self, transcoder: Transcoder) -> None:
        self.transcoder = transcoder
        out_dir = transcoder.out_dir
        transcoder.start()
        if self.settings.recordings_storage != "local":
            self._sync = TreeSync(self.storage, out_dir, f"live/{self._playback_id}")

    # --- loops ---------------------------------------------------------------------------

    async def _every(
        self,
        seconds: float,
        step: Callable[[], Awaitable[None]],
        wait: Callable[[], float] | None = None,
    ) -> None:
        """`step` every `seconds` (or `wait()`) from a random phase (no lockstep of workers)."""
        await asyncio.sleep(self.phase(seconds))
        while True:
            try:
                await step()
            except FencedOff:
                log.warning("container_fenced_off", event_id=str(self.event_id))
                self.stop("replaced")
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("container_step_failed", step=getattr(step, "__name__", "?"))
                # Cut off from the database for longer than the manager waits for a
                # heartbeat: the manager has given up on us and started another worker.
                lost_for = time.monotonic() - self._last_ok
                if lost_for > self.settings.container_heartbeat_timeout_seconds:
                    self.stop("lost_database")
                    return
            await asyncio.sleep(seconds if wait is None else wait())

    def _resources(self) -> tuple[float, int]:
        return self._meter.measure(None if self.transcoder is None else self.transcoder.pid)

    async def _heartbeat(self, *, final: bool = False) -> None:
        now_mono = time.monotonic()
        elapsed, self._last_tick = now_mono - self._last_tick, now_mono
        cpu, memory = self._resources()

        now = utcnow()
        if final:  # kept across runs: the next launch clears the row's own stop fields
            self.worker_state["last_stop"] = {"reason": self.stop_reason, "at": now.isoformat()}
        values: dict[str, Any] = {
            "last_heartbeat_at": now, "cpu_percent": round(cpu, 2), "memory_bytes": memory,
            "container_seconds": EventContainer.container_seconds + elapsed,
            "worker_state": self.worker_state,
        }  # fmt: skip
        if final:
            values |= {"state": "stopped", "stopped_at": now, "stop_reason": self.stop_reason}
        async with self.state.db.transaction() as session:
            if not await repo.update_container(
                session, self.event_id, handle=self.handle, **values
            ):
                raise FencedOff()
            event = await repo.get_event_unscoped(session, self.event_id)
        self._last_ok = time.monotonic()
        if event is not None and not final:
            self._event_status = EventStatus(event.status)
            await self._react_to_status()
        if self._sync is not None and not final:
            await self._sync.sync()

    async def _react_to_status(self) -> None:
        if self.restreamer is not None:
            await self.restreamer.follow(self._event_status)
        if self.previews is not None:
            await self.previews.follow(self._event_status)
        if self._event_status.is_finished:
            self.stop("event_ended")

    async def _on_state(self, payload: bytes) -> None:
        with contextlib.suppress(ValueError, KeyError):
            self._event_status = EventStatus(jsonparse.loads(payload)["status"])
            if self._event_status == EventStatus.LIVE:  # the ingest is back: pull it at once
                for pull in (self.transcoder, self.previews.copy if self.previews else None):
                    if pull is not None:
                        pull.wake()
            await self._react_to_status()

    async def _check_health(self) -> None:
        sample = await self.probe.sample(self._playback_id)
        self._pace.after(answered=sample is not None or isinstance(self.probe, NoProbe))
        health = self._tracker.judge(sample, time.monotonic())
        report: dict[str, Any] = {"health": health.value, "at": utcnow().isoformat()}
        if sample is not None:
            report["sample"] = sample.as_dict()
            rollup = self.worker_state.setdefault("rollup", {})
            rollup["samples"] = int(rollup.get("samples", 0)) + 1
            rollup["peak_viewers"] = max(int(rollup.get("peak_viewers", 0)), sample.viewers)
            minute = self._minute()
            minute["viewers"] = max(minute["viewers"], sample.viewers)
            rollup["max_bw_in_bps"] = max(int(rollup.get("max_bw_in_bps", 0)), sample.bw_in_bps)
            rollup["bytes_in"] = max(int(rollup.get("bytes_in", 0)), sample.bytes_in)
            if health in (Health.HEALTHY, Health.STARTING):
                rollup["healthy_seconds"] = round(
                    float(rollup.get("healthy_seconds", 0.0))
                    + self.settings.container_health_interval_seconds,
                    3,
                )
        self.worker_state["health"] = report
        await self.state.pubsub.publish(
            health_channel(self.event_id), _json(report | {"event_id": str(self.event_id)})
        )
        if self._tenant_id is not None and not isinstance(self.probe, NoProbe):
            await analytics.record_health(
                self.state,
                event_id=self.event_id,
                tenant_id=self._tenant_id,
                sample=health_sample(health, sample),
                at=utcnow(),
            )

    async def _rollup(self) -> None:
        rollup = self.worker_state.setdefault("rollup", {})
        rollup["moderation"] = dict(self.moderator.counts)
        rollup["container_runs"] = self.worker_state.get("runs", 1)
        rollup["at"] = utcnow().isoformat()
        message = {"event_id": str(self.event_id), **rollup}
        await self.state.pubsub.publish(analytics_channel(self.event_id), _json(message))
        # Taken before the first await: chat arriving meanwhile counts in the next hand-off.
        minutes, self._minutes = self._minutes, {}
        handoff = dict(rollup) | {
            "tenant_id": str(self._tenant_id),
            "minutes": [{"minute": m.isoformat(), **figures} for m, figures in minutes.items()],
        }
        failed = False
        for sink in self.state.hooks.handlers(CONTAINER_ROLLUP):
            try:
                await sink(Rollup(self.state, self.event_id, handoff))
            except Exception:
                failed = True
                log.exception("rollup_sink_failed")
        if failed:  # hand these minutes over again next time
            for at, figures in minutes.items():
                minute = self._minute(at)
                minute["viewers"] = max(minute["viewers"], figures["viewers"])
                minute["chat_messages"] += figures["chat_messages"]

    def _minute(self, at: dt.datetime | None = None) -> dict[str, int]:
        """This minute's (or `at`'s) figures awaiting hand-off."""
        key = (at or utcnow()).replace(second=0, microsecond=0)
        figures = self._minutes.get(key)
        if figures is None:
            figures = self._minutes[key] = {"viewers": 0, "chat_messages": 0}
        return figures

    async def _on_chat(self, payload: bytes) -> None:
        try:
            message = ChatMessage.model_validate_json(payload)
        except ValueError:
            return
        verdict = self.moderator.check(message)
        self._minute()["chat_messages"] += 1
        stored = self.worker_state.setdefault("moderation", {})
        stored.update(self.moderator.counts)
        flagged = message_uuid(message.message_id) if verdict.action == "hide" else None
        if flagged is not None and self._tenant_id is not None:
            # Its own tenant's rows: a pub/sub handler runs in the reader's context, not ours.
            with tenant_scope(self._tenant_id):
                async with self.state.db.transaction() as session:
                    await hide_flagged(self.state, session, self._tenant_id, self.event_id,
                                       flagged, verdict.reason)  # fmt: skip
        await self.state.pubsub.publish(
            verdict_channel(self.event_id), verdict.model_dump_json().encode()
        )


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, default=str).encode()
