"""WebSocket figures in /metrics: connections open, messages in and out, fan-out lag."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from tests.realtime.conftest import create_event, join


async def figures(client) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                out[sample.name] = sample.value
    return out


async def test_connections_messages_and_fanout_lag_are_counted(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    before = await figures(client)
    sender = await join(url, world["viewer"])
    watcher = await join(url, world["viewer2"])
    during = await figures(client)
    assert during["bigfootlive_ws_connections"] == before["bigfootlive_ws_connections"] + 2

    await sender.say("hello")
    await watcher.next("message")
    await sender.next("message")
    after = await figures(client)
    received = "bigfootlive_ws_messages_received_total"
    sent = "bigfootlive_ws_messages_sent_total"
    assert after[received] >= before[received] + 1  # the send command
    assert after[sent] >= before[sent] + 2  # one message, two viewers
    lag = "bigfootlive_fanout_lag_seconds_count"
    assert after[lag] >= before.get(lag, 0) + 1

    await sender.close()
    await watcher.close()

    deadline = asyncio.get_running_loop().time() + 10
    while (await figures(client))["bigfootlive_ws_connections"] != before[
        "bigfootlive_ws_connections"
    ]:
        assert asyncio.get_running_loop().time() < deadline, "the gauge did not come back down"
        await asyncio.sleep(0.02)
