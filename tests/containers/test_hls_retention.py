"""HLS retention: an ended event's live HLS (the transcoder's tree in local or S3 storage, and
nginx-rtmp's own files) is deleted once HLS_RETENTION_HOURS are over; VOD recordings stay."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import SecretStr
from sqlalchemy import inspect, update

from bigfootlive.composition import AppState
from bigfootlive.containers import retention
from bigfootlive.containers.storage import LocalStorage, S3Storage
from bigfootlive.containers.vod import publish_recording
from bigfootlive.db import utcnow
from bigfootlive.models import Event
from tests.containers.helpers import armed_event, stop, streamer
from tests.containers.media import S3Server
from tests.fixtures.jobs import settled
from tests.fixtures.polling import until

BUCKET = "retention-test"
ONE_SECOND = 1 / 3600


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {
        "container_manager_enabled": False,
        "jobs_inprocess_worker": True,
        "jobs_scheduler": False,
        "recordings_dir": str(tmp_path / "media"),
        "nginx_rtmp_hls_path": str(tmp_path / "nginx-hls"),
        "hls_retention_hours": ONE_SECOND,
    }


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server.serving_bucket(BUCKET) as server:
        yield server


def write_live_tree(hls: Path, segments: int = 2) -> None:
    """What the transcoder writes: a master playlist and a rendition with segments."""
    rendition = hls / "360p"
    rendition.mkdir(parents=True)
    (hls / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n")
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:2"]
    for i in range(segments):
        (rendition / f"seg_{i:05d}.ts").write_bytes(b"\x47" * 188)
        lines += ["#EXTINF:2.000,", f"seg_{i:05d}.ts"]
    (rendition / "index.m3u8").write_text("\n".join(lines) + "\n")


def write_nginx_hls(root: Path, name: str) -> list[Path]:
    """nginx-rtmp's files for one stream, flat (`<name>-N.ts`) and nested (`<name>/N.ts`)."""
    root.mkdir(parents=True, exist_ok=True)
    files = [root / f"{name}.m3u8", root / f"{name}-0.ts", root / f"{name}-1.ts"]
    (root / name).mkdir()
    files += [root / name / "index.m3u8", root / name / "0.ts"]
    for path in files:
        path.write_bytes(b"x")
    return files


def media(state: AppState) -> Path:
    return Path(state.settings.recordings_dir)


async def ended_ago(state: AppState, event_id: str, age: dt.timedelta) -> None:
    async with state.db.transaction() as session:
        await session.execute(
            update(Event).where(Event.id == uuid.UUID(event_id)).values(ended_at=utcnow() - age)
        )


async def test_live_hls_of_an_ended_event_is_deleted_after_the_retention(
    factory, client, state: AppState
):
    account = await streamer(factory)
    ended = await armed_event(client, account)
    still_live = await armed_event(client, account)
    nginx = Path(state.settings.nginx_rtmp_hls_path or "")
    for event in (ended, still_live):
        write_live_tree(media(state) / "live" / event["playback_id"])
    ended_nginx = write_nginx_hls(nginx, ended["playback_id"])
    live_nginx = write_nginx_hls(nginx, still_live["playback_id"])

    assert (await stop(client, account, ended)).status_code == 200
    gone = media(state) / "live" / ended["playback_id"]
    await until(lambda: not gone.exists(), within=15.0)
    await settled(state.jobs)  # the purge has run to its end
    assert not any(p.exists() for p in ended_nginx)
    # Another event's output is not touched.
    assert (media(state) / "live" / still_live["playback_id"] / "360p" / "seg_00001.ts").exists()
    assert all(p.exists() for p in live_nginx)


async def test_published_recording_is_kept_when_its_live_hls_goes(factory, client, state: AppState):
    account = await streamer(factory)
    event = await armed_event(client, account, recording=True)
    live = media(state) / "live" / event["playback_id"]
    write_live_tree(live)
    async with state.db.transaction() as session:
        recording = await publish_recording(
            state.settings,
            session,
            LocalStorage(media(state)),
            tenant_id=account.tenant.id,
            event_id=uuid.UUID(event["id"]),
            hls_dir=live,
        )
    assert recording is not None

    assert (await stop(client, account, event)).status_code == 200
    await until(lambda: not live.exists(), within=15.0)
    vod = media(state) / "vod" / event["id"]
    assert (vod / "master.m3u8").exists()
    assert sorted(p.name for p in (vod / "360p").iterdir()) == [
        "index.m3u8",
        "seg_00000.ts",
        "seg_00001.ts",
    ]
    listed = await client.get(f"/api/events/{event['id']}/recordings", headers=account.headers)
    assert [r["id"] for r in listed.json()] == [str(recording.id)]


async def test_sweep_deletes_what_is_past_retention_only_and_is_idempotent(
    factory, client, state: AppState
):
    state.settings.hls_retention_hours = 24.0
    account = await streamer(factory)
    old, recent, unpublished = (
        await armed_event(client, account),
        await armed_event(client, account),
        await armed_event(client, account, recording=True),
    )
    for event in (old, recent, unpublished):
        write_live_tree(media(state) / "live" / event["playback_id"])
        assert (await stop(client, account, event)).status_code == 200
    await ended_ago(state, old["id"], dt.timedelta(hours=25))
    await ended_ago(state, unpublished["id"], dt.timedelta(hours=25))
    await ended_ago(state, recent["id"], dt.timedelta(hours=1))

    assert await retention.sweep(state) == 4  # the two playlists and two segments of `old`
    assert not (media(state) / "live" / old["playback_id"]).exists()
    assert (media(state) / "live" / recent["playback_id"] / "master.m3u8").exists()
    # A recorded event whose recording was never published keeps its only copy.
    assert (media(state) / "live" / unpublished["playback_id"] / "master.m3u8").exists()
    assert await retention.sweep(state) == 0


async def test_retention_zero_keeps_live_hls_forever(factory, client, state: AppState):
    state.settings.hls_retention_hours = 0
    account = await streamer(factory)
    event = await armed_event(client, account)
    write_live_tree(media(state) / "live" / event["playback_id"])
    assert (await stop(client, account, event)).status_code == 200
    await ended_ago(state, event["id"], dt.timedelta(days=3))
    assert await retention.sweep(state) == 0
    assert await retention.purge_event(state, uuid.UUID(event["id"])) == 0
    await settled(state.jobs)
    assert (media(state) / "live" / event["playback_id"] / "master.m3u8").exists()


async def test_live_hls_in_s3_is_deleted_and_the_vod_objects_stay(
    factory, client, state: AppState, s3: S3Server
):
    state.settings.hls_retention_hours = 24.0
    state.settings.recordings_storage = "s3"
    state.settings.s3_endpoint_url = s3.url
    state.settings.s3_bucket_recordings = BUCKET
    state.settings.aws_region = "us-east-1"
    state.settings.aws_access_key_id = SecretStr("test")
    state.settings.aws_secret_access_key = SecretStr("test")
    bucket = boto3.client(
        "s3",
        endpoint_url=s3.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    account = await streamer(factory)
    event = await armed_event(client, account)
    live_keys = [f"live/{event['playback_id']}/360p/seg_{i:05d}.ts" for i in range(1200)]
    vod_keys = [f"vod/{event['id']}/master.m3u8", f"vod/{event['id']}/360p/seg_00000.ts"]
    for key in [*live_keys, *vod_keys]:
        await asyncio.to_thread(bucket.put_object, Bucket=BUCKET, Key=key, Body=b"x")
    scratch = media(state) / "work" / event["id"]
    write_live_tree(scratch)
    assert (await stop(client, account, event)).status_code == 200
    await ended_ago(state, event["id"], dt.timedelta(hours=30))

    storage = S3Storage(state.settings)
    # 1,200 live objects (more than one listing page) + 4 scratch files
    assert await retention.purge_event(state, uuid.UUID(event["id"]), storage=storage) == 1204
    left = await asyncio.to_thread(bucket.list_objects_v2, Bucket=BUCKET, Prefix="")
    keys = {item["Key"] for item in left.get("Contents", [])}
    assert not any(k.startswith(f"live/{event['playback_id']}/") for k in keys)
    assert set(vod_keys) <= keys
    assert not scratch.exists()


async def test_the_sweep_finds_ended_events_through_an_index(state: AppState):
    """The hourly sweep selects events by `ended_at` across every tenant: indexed."""

    def ended_at_indexes(connection: Any) -> list[str]:
        indexes = inspect(connection).get_indexes("events")
        return [i["name"] for i in indexes if i["column_names"] == ["ended_at"]]

    async with state.db.engine.connect() as connection:
        assert await connection.run_sync(ended_at_indexes) == ["ix_events_ended_at"]
