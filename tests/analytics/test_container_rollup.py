"""The event container's roll-ups reach the event's per-minute analytics."""

from __future__ import annotations

import asyncio
import uuid

from bigfootlive.containers.health import StreamSample
from bigfootlive.containers.moderation import ChatMessage, inbound_channel, verdict_channel
from bigfootlive.containers.worker import EventWorker
from tests.analytics.conftest import live_event
from tests.analytics.test_health_history import ScriptedProbe, wait_for_quiet_minute
from tests.fixtures.polling import until


async def test_container_rollups_show_in_the_per_minute_figures(factory, client, state):
    _, streamer, event_id = await live_event(factory, client, state)
    probe = ScriptedProbe(
        [
            StreamSample(publishing=True, bytes_in=1_000, viewers=3),
            StreamSample(publishing=True, bytes_in=5_000, viewers=7),
            StreamSample(publishing=True, bytes_in=9_000, viewers=5),
        ]
    )
    state.settings.container_health_interval_seconds = 0.05
    state.settings.container_rollup_interval_seconds = 0.05  # several hand-offs, none twice
    verdicts: list[bytes] = []

    async def on_verdict(payload: bytes) -> None:
        verdicts.append(payload)

    unsubscribe = await state.pubsub.subscribe(verdict_channel(event_id), on_verdict)
    await wait_for_quiet_minute()
    worker = EventWorker(
        state, uuid.UUID(event_id), handle="test", measure_process=False, takeover=True,
        probe=probe,
    )  # fmt: skip
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(probe.done.wait(), 10)
        for n in range(4):
            message = ChatMessage(message_id=f"m{n}", user_id="u1", text=f"hello {n}")
            await state.pubsub.publish(
                inbound_channel(event_id), message.model_dump_json().encode()
            )
            await until(lambda n=n: len(verdicts) == n + 1)
            await asyncio.sleep(0.06)  # a roll-up in between
    finally:
        worker.stop()
        await unsubscribe()
    assert await asyncio.wait_for(running, 10) == 0

    figures = await client.get(f"/api/analytics/events/{event_id}", headers=streamer.headers)
    assert figures.status_code == 200, figures.text
    [minute] = figures.json()["timeline"]
    assert minute["viewers"] == 7
    assert figures.json()["viewers"]["peak"] == 7
    # The container checked 4 messages, but chat is counted where it is stored (the chat
    # domain), so these are not added to the event's figures a second time.
    assert figures.json()["chat"]["messages"] == 0
