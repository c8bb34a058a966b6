"""The simulcast pusher's pieces that need no media server: the ffmpeg command, the back-off
and the reason shown in the API (never the destination's key or the pull credential)."""

from __future__ import annotations

import uuid

from bigfootlive.config import Settings
from bigfootlive.containers.simulcast import Pusher, Target, backoff, push_command
from bigfootlive.events.simulcast_schemas import DestinationState


def test_push_command_copies_to_flv():
    cmd = push_command("rtmp://127.0.0.1/live/pb1?token=t", "rtmps://x.example/app/KEY")
    assert cmd[-1] == "rtmps://x.example/app/KEY"
    assert cmd[cmd.index("-c") + 1] == "copy"
    assert cmd[cmd.index("-f") + 1] == "flv"
    assert "-progress" in cmd


def test_backoff_doubles_and_is_capped():
    settings = Settings(simulcast_retry_min_seconds=1.0, simulcast_retry_max_seconds=5.0)
    assert [backoff(settings, n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_reason_masks_the_key_and_the_pull_credential():
    key = "live_123456789_secret"
    target = Target(id=uuid.uuid4(), push_url=f"rtmp://x.example/app/{key}", secret=key,
                    fingerprint="f")  # fmt: skip
    states: list[DestinationState] = []
    pusher = Pusher(Settings(), target, lambda: "", lambda *a: states.append(a[1]))
    pull = "rtmp://127.0.0.1/live/pb?token=pulltoken123"
    stderr = (
        f"[rtmp @ 0x1] Server error: Already publishing\n"
        f"rtmp://x.example/app/{key}: Input/output error ({pull}) token=pulltoken123\n"
    )
    reason = pusher._reason(stderr, pull, 1)
    assert key not in reason
    assert "pulltoken123" not in reason
    assert "Input/output error" in reason
    assert pusher._reason("", pull, 1) == "ffmpeg exited with status 1"
