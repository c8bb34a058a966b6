"""The containers' pure parts: nginx-rtmp stats, health verdicts, chat rules, the ffmpeg
ladder, VOD playlists, the lease, back-off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from bigfootlive.cli_settings import load_settings_file, preload_settings_file
from bigfootlive.containers.health import Health, HealthTracker, StreamSample, parse_nginx_rtmp_stat
from bigfootlive.containers.lease import DatabaseLease
from bigfootlive.containers.manager import backoff
from bigfootlive.containers.moderation import ChatAutoModerator, ChatMessage
from bigfootlive.containers.transcoder import ffmpeg_command, parse_renditions
from bigfootlive.containers.vod import duration_of, finalize_playlist
from bigfootlive.db import Database
from bigfootlive.streaming.health import measure_packets
from tests.fixtures.clock import ManualClock

STAT = Path(__file__).parent.parent / "fixtures" / "payloads" / "nginx_rtmp" / "stat.xml"


def test_nginx_rtmp_stat_is_read_for_one_stream():
    sample = parse_nginx_rtmp_stat(STAT.read_bytes(), "pb0123456789abcdef0123")
    assert sample.publishing is True
    assert sample.bytes_in == 226_712
    assert sample.bw_in_bps == 0
    assert sample.viewers == 1
    assert (sample.width, sample.height, sample.video_codec) == (640, 360, "H264")
    assert parse_nginx_rtmp_stat(STAT.read_bytes(), "absent").publishing is False


def test_a_new_stream_is_starting_not_offline_while_nginx_bandwidth_reads_zero():
    tracker = HealthTracker(stale_seconds=5)
    assert tracker.judge(StreamSample(publishing=True, bytes_in=10), 0) == Health.STARTING
    assert tracker.judge(StreamSample(publishing=True, bytes_in=20), 1) == Health.HEALTHY
    assert tracker.judge(StreamSample(publishing=True, bytes_in=20), 3) == Health.HEALTHY
    assert tracker.judge(StreamSample(publishing=True, bytes_in=20), 7) == Health.STALLED
    assert tracker.judge(StreamSample(publishing=False), 8) == Health.OFFLINE
    assert tracker.judge(None, 9) == Health.UNKNOWN


@pytest.mark.parametrize(
    ("texts", "reason"),
    [
        (["buy cheap SCAM here"], "blocked_term"),
        (["a", "b", "c", "d"], "flood"),
        (["same thing", "same thing"], "repeated"),
        (["http://a.example http://b.example www.c.example"], "link_spam"),
        (["WHY IS NOBODY LISTENING TO ME"], "shouting"),
    ],
)
def test_chat_auto_moderation_hides_abuse(texts, reason):
    moderator = ChatAutoModerator(["scam"], flood_messages=3, flood_seconds=10)
    verdicts = [
        moderator.check(ChatMessage(message_id=str(i), user_id="u", text=t), now=float(i))
        for i, t in enumerate(texts)
    ]
    assert verdicts[-1].action == "hide"
    assert verdicts[-1].reason == reason
    assert all(v.action == "allow" for v in verdicts[:-1])


def test_chat_auto_moderation_lets_ordinary_messages_through():
    moderator = ChatAutoModerator(["scam"])
    verdict = moderator.check(ChatMessage(message_id="1", user_id="u", text="Scampi for dinner?"))
    assert verdict.action == "allow"


def test_renditions_are_parsed_and_bad_ones_refused():
    ladder = parse_renditions("1080p:1920x1080:5000k, 720p:1280x720:2800k,audio:128k")
    assert [(r.name, r.height, r.bitrate, r.audio_only) for r in ladder] == [
        ("1080p", 1080, "5000k", False),
        ("720p", 720, "2800k", False),
        ("audio", None, "128k", True),
    ]
    with pytest.raises(ValueError, match="bad rendition"):
        parse_renditions("1080p:huge")
    with pytest.raises(ValueError, match="even width and height"):
        parse_renditions("odd:853x480:1200k")


def test_ffmpeg_ladder_maps_every_rendition_and_keeps_recordings(tmp_path):
    ladder = parse_renditions("720p:1280x720:2800k,480p:854x480:1200k,audio:128k")
    cmd = ffmpeg_command(
        "rtmp://127.0.0.1/live/x", tmp_path, ladder, segment_seconds=2, record=True
    )
    stream_map = cmd[cmd.index("-var_stream_map") + 1]
    assert stream_map == "v:0,a:0,name:720p v:1,a:1,name:480p a:2,name:audio"
    assert cmd[cmd.index("-master_pl_name") + 1] == "master.m3u8"
    assert "append_list" in cmd[cmd.index("-hls_flags") + 1]
    assert cmd[cmd.index("-hls_list_size") + 1] == "0"
    live_only = ffmpeg_command("x", tmp_path, ladder, segment_seconds=2, record=False)
    assert "delete_segments" in live_only[live_only.index("-hls_flags") + 1]


def test_a_killed_transcoders_playlist_is_closed_as_vod():
    text = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2.0,\na.ts\n#EXTINF:1.5,\nb.ts\n"
    closed = finalize_playlist(text)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in closed
    assert "EVENT" not in closed
    assert closed.rstrip().endswith("#EXT-X-ENDLIST")
    assert finalize_playlist(closed) == closed
    assert duration_of(closed) == 3.5


def test_restart_backoff_doubles_up_to_its_cap():
    assert [backoff(1, 10, n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]


async def test_lease_has_one_holder_until_it_expires(state):
    clock = ManualClock()
    first = DatabaseLease(state.db, "test-lease", "a", ttl_seconds=30, clock=clock)
    second = DatabaseLease(state.db, "test-lease", "b", ttl_seconds=30, clock=clock)
    assert await first.acquire() is True
    assert await second.acquire() is False
    clock.advance(20)
    assert await first.acquire() is True  # renewal: 30 s from now
    clock.advance(20)
    assert await second.acquire() is False  # 40 s after the first acquisition, still renewed
    clock.advance(11)
    assert await second.acquire() is True
    assert await first.acquire() is False
    await second.release()
    assert await first.acquire() is True


def test_frame_rate_and_keyframe_interval_come_from_packet_timestamps():
    # ffprobe `packet=pts_time,flags` lines: 10 fps, a keyframe every 2 s, out of order (B-frames)
    lines = [f"{i / 10:.6f},{'K_' if i % 20 == 0 else '__'}," for i in range(60)]
    lines[3], lines[4] = lines[4], lines[3]
    measured = measure_packets("\n".join(lines) + "\n\nN/A,__,\n")
    assert measured.fps == 10.0
    assert measured.keyframe_interval_seconds == 2.0
    assert measure_packets("0.000000,K_,\n").fps is None


async def test_a_holder_that_cannot_reach_the_database_does_not_hold_the_lease(settings):
    # A PostgreSQL server that is not there: every statement fails to connect.
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/gone"
    db = Database.from_settings(settings.model_copy(update={"database_url": url}))
    lease = DatabaseLease(db, "test-lease", "a", ttl_seconds=30, clock=ManualClock())
    lease.held = True  # it held the lease before the database went away
    try:
        assert await lease.acquire() is False
        assert lease.held is False
    finally:
        await db.dispose()


def test_a_worker_takes_the_templates_parsed_settings_only_while_the_file_is_unchanged(tmp_path):
    """The template parses the runtime's settings file before it forks; a worker given that
    file takes those settings, but a file changed since (or never preloaded) is parsed again,
    and an invalid one is still refused with its reasons."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"node_env": "test", "log_level": "ERROR"}))
    assert preload_settings_file(str(path))
    first = load_settings_file(str(path))
    assert load_settings_file(str(path)) is first
    path.write_text(json.dumps({"node_env": "test", "log_level": "DEBUG"}))
    changed = load_settings_file(str(path))
    assert changed is not first
    assert changed.log_level == "DEBUG"
    path.write_text(json.dumps({"node_env": "test", "port": "not a port"}))
    assert not preload_settings_file(str(path))
    with pytest.raises(typer.Exit) as refused:
        load_settings_file(str(path))
    assert refused.value.exit_code == 2
