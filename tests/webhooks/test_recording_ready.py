"""Recording hand-off: the containers' VOD publish emits `recording.ready`, once per recording."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from standardwebhooks import Webhook

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.containers.storage import LocalStorage
from bigfootlive.containers.vod import publish_recording
from bigfootlive.models import Recording
from tests.fixtures.jobs import settled
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_webhooks import deliveries, make_endpoint, wait_for_requests


def write_ladder(hls: Path, segments: int = 3, seconds: float = 2.0) -> None:
    """What the transcoder leaves when it is killed: playlists without ENDLIST, segments."""
    (hls / "master.m3u8").parent.mkdir(parents=True, exist_ok=True)
    (hls / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n"
    )
    rendition = hls / "360p"
    rendition.mkdir()
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:EVENT"]
    for i in range(segments):
        (rendition / f"seg_{i:05d}.ts").write_bytes(b"\x47" * 188 * 4)
        lines += [f"#EXTINF:{seconds:.3f},", f"seg_{i:05d}.ts"]
    (rendition / "index.m3u8").write_text("\n".join(lines) + "\n")


async def hand_off(state: AppState, tenant_id: uuid.UUID, event_id: uuid.UUID, hls: Path):
    storage = LocalStorage(Path(state.settings.recordings_dir))
    async with state.db.transaction() as session:
        recording = await publish_recording(
            state.settings,
            session,
            storage,
            tenant_id=tenant_id,
            event_id=event_id,
            hls_dir=hls,
        )
    assert isinstance(recording, Recording)
    return recording


async def test_published_recording_is_handed_off_once_as_a_signed_recording_ready(
    factory, client, state: AppState, receiver: Receiver, tmp_path: Path
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    streamer = await factory.user(tenant, role=Role.STREAMER)
    endpoint = await make_endpoint(client, admin, receiver.url, ["recording.ready"])
    created = await client.post(
        "/api/events", json={"title": "Recorded", "recording": True}, headers=streamer.headers
    )
    assert created.status_code == 201, created.text
    event_id = uuid.UUID(created.json()["id"])
    hls = tmp_path / "work" / str(event_id)
    write_ladder(hls)

    first = await hand_off(state, tenant.id, event_id, hls)
    second = await hand_off(state, tenant.id, event_id, hls)  # the hand-off ran twice
    assert second.id == first.id

    await wait_for_requests(receiver, 1)
    await settled(state.jobs)
    [request] = receiver.requests
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "recording.ready"
    data = payload["data"]
    assert data["recording_id"] == str(first.id)
    assert data["event_id"] == str(event_id)
    assert data["duration_seconds"] == 6.0
    assert data["playback_url"] == f"{state.settings.cdn_base_url}/vod/{event_id}/master.m3u8"
    assert data["renditions"] == ["360p"]
    [log] = await deliveries(client, admin, endpoint["id"])
    assert log["event_type"] == "recording.ready"
    assert log["status"] == "succeeded"

    listed = await client.get(f"/api/events/{event_id}/recordings", headers=streamer.headers)
    assert [r["id"] for r in listed.json()] == [str(first.id)]


async def test_concurrent_hand_offs_of_one_recording_emit_one_webhook(
    factory, client, state: AppState, receiver: Receiver, tmp_path: Path
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    streamer = await factory.user(tenant, role=Role.STREAMER)
    await make_endpoint(client, admin, receiver.url, ["recording.ready"])
    created = await client.post(
        "/api/events", json={"title": "Recorded", "recording": True}, headers=streamer.headers
    )
    event_id = uuid.UUID(created.json()["id"])
    hls = tmp_path / "work" / str(event_id)
    write_ladder(hls)

    results = await asyncio.gather(
        hand_off(state, tenant.id, event_id, hls),
        hand_off(state, tenant.id, event_id, hls),
        return_exceptions=True,
    )
    ids = {r.id for r in results if isinstance(r, Recording)}
    assert len(ids) == 1, results
    await wait_for_requests(receiver, 1)
    await settled(state.jobs)
    assert len(receiver.requests) == 1
    listed = await client.get(f"/api/events/{event_id}/recordings", headers=streamer.headers)
    assert len(listed.json()) == 1
