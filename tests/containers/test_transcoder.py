"""Transcoder and recording -> VOD, end to end: nginx-rtmp fed by ffmpeg, the event's
container pulling the ingest into an HLS ladder, and the recording published as VOD to local
storage or to an S3-compatible server (moto) on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bigfootlive.containers.worker import hls_dir_for
from tests.containers.helpers import FAST, armed_event, running, stop, streamer, wait_row
from tests.containers.media import RtmpServer, S3Server, probe, publish, tools_available
from tests.fixtures import services

pytestmark = pytest.mark.e2e
BUCKET = "recordings-test"
RENDITIONS = "360p:640x360:500k,240p:426x240:250k,audio:64k"


@pytest.fixture(scope="module")
def rtmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtmpServer]:
    services.require(tools_available(), "nginx with libnginx-mod-rtmp, ffmpeg and ffprobe")
    server = RtmpServer(
        tmp_path_factory.mktemp("nginx"), services.free_port(), services.free_port()
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server.serving_bucket(BUCKET) as server:
        yield server


@pytest.fixture
def settings_overrides(rtmp: RtmpServer, tmp_path: Path) -> dict[str, Any]:
    return {
        **FAST,
        "container_runtime": "inprocess",
        "container_transcoder": True,
        # The drain uploads the whole ladder; on a loaded 2-core machine that took over 30 s and
        # the manager stopped the worker before it published the recording.
        "container_stop_grace_seconds": 90.0,
        "transcoder_input_url": rtmp.url("{playback_id}"),
        "transcoder_renditions": RENDITIONS,
        "transcoder_segment_seconds": 1.0,
        "transcoder_preset": "ultrafast",
        "nginx_rtmp_stat_url": rtmp.stat_url,
        "recordings_dir": str(tmp_path / "media"),
        "cdn_base_url": "https://cdn.example.test",
    }


async def _live_ladder(factory, client, state, rtmp) -> tuple[Any, dict[str, Any], Path]:
    """Arm a recorded event, publish to nginx-rtmp, wait for a ladder with segments."""
    account = await streamer(factory)
    event = await armed_event(client, account, recording=True)
    await wait_row(state, event["id"], running)
    publisher = publish(rtmp.url(event["playback_id"]), seconds=7)
    hls = hls_dir_for(state.settings, uuid.UUID(event["id"]), event["playback_id"])
    for _ in range(300):
        playlists = list(hls.glob("*/index.m3u8"))
        if len(playlists) == 3 and all(p.read_text().count("#EXTINF") >= 2 for p in playlists):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"no ladder in {hls}: {sorted(hls.rglob('*'))}")
    row = await wait_row(
        state, event["id"], lambda r: r.worker_state.get("health", {}).get("sample") is not None
    )
    assert row.worker_state["health"]["sample"]["publishing"] is True
    assert row.worker_state["health"]["health"] in ("healthy", "starting")
    await asyncio.to_thread(publisher.wait, 30)
    assert publisher.returncode == 0, publisher.stderr.read() if publisher.stderr else ""
    return account, event, hls


def _check_master(target: str, duration_at_least: float | None = None) -> None:
    found = probe(target)
    programs = found.get("programs", [])
    assert isinstance(programs, list)
    assert len(programs) == 3, found
    streams = found["streams"]
    assert isinstance(streams, list)
    sizes = {(s.get("width"), s.get("height")) for s in streams if s["codec_type"] == "video"}
    assert sizes == {(640, 360), (426, 240)}, streams  # exactly as configured
    assert {s["codec_name"] for s in streams} == {"h264", "aac"}
    if duration_at_least is not None:
        assert float(found["format"]["duration"]) >= duration_at_least, found["format"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_transcoder_produces_a_multi_rendition_hls_ladder_and_local_vod(
    factory, client, state, rtmp
):
    account, event, hls = await _live_ladder(factory, client, state, rtmp)
    master = (hls / "master.m3u8").read_text()
    assert master.count("#EXT-X-STREAM-INF") == 3
    _check_master(str(hls / "master.m3u8"))

    assert (await stop(client, account, event)).status_code == 200
    await wait_row(state, event["id"], lambda r: r.state == "stopped", within=100)
    listed = await client.get(f"/api/events/{event['id']}/recordings")
    assert listed.status_code == 200, listed.text
    (recording,) = listed.json()
    assert recording["status"] == "ready"
    assert recording["storage"] == "local"
    assert recording["playback_url"] == (f"https://cdn.example.test/vod/{event['id']}/master.m3u8")
    assert sorted(recording["renditions"]) == ["240p", "360p", "audio"]
    assert recording["duration_seconds"] >= 4
    vod = Path(state.settings.recordings_dir) / "vod" / event["id"]
    for name in ("360p", "240p", "audio"):
        text = (vod / name / "index.m3u8").read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text
        assert text.rstrip().endswith("#EXT-X-ENDLIST")
    _check_master(str(vod / "master.m3u8"), duration_at_least=4)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_recording_is_published_as_vod_to_s3_compatible_storage(
    factory, client, state, rtmp, s3, settings
):
    settings.recordings_storage = "s3"
    settings.s3_endpoint_url = s3.url
    settings.s3_bucket_recordings = BUCKET
    settings.aws_region = "us-east-1"
    from pydantic import SecretStr

    settings.aws_access_key_id = SecretStr("test")
    settings.aws_secret_access_key = SecretStr("test")
    settings.cdn_base_url = f"{s3.url}/{BUCKET}"  # the CDN's origin is the bucket
    settings.s3_object_acl = "public-read"

    account, event, _ = await _live_ladder(factory, client, state, rtmp)
    assert (await stop(client, account, event)).status_code == 200
    row = await wait_row(state, event["id"], lambda r: r.state == "stopped", within=100)
    listed = (await client.get(f"/api/events/{event['id']}/recordings")).json()
    assert len(listed) == 1, (row.stop_reason, row.worker_state)
    (recording,) = listed
    assert recording["storage"] == "s3"
    assert recording["playback_url"] == f"{s3.url}/{BUCKET}/vod/{event['id']}/master.m3u8"
    # Played over HTTP from the S3-compatible server, as a viewer's player would.
    _check_master(recording["playback_url"], duration_at_least=4)
    live = boto3.client(
        "s3",
        endpoint_url=s3.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).list_objects_v2(Bucket=BUCKET, Prefix=f"live/{event['playback_id']}/")
    keys = {o["Key"] for o in live.get("Contents", [])}
    assert f"live/{event['playback_id']}/master.m3u8" in keys  # live HLS was uploaded too
