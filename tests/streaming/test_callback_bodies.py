"""Callback bodies a media server (or someone holding its API key) should never send: each gets
a 400 with a JSON error, and nothing changes."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigfootlive.streaming.base import query_args
from tests.fixtures.recorded import payload

DEPTH = 10_000
HOOKS = ("srs", "mediamtx", "nginx-rtmp")


def _deep_array() -> bytes:
    return b"[" * DEPTH + b"]" * DEPTH


def _deep_inside_a_real_publish(stream_key: str, playback_id: str) -> bytes:
    """SRS's on_publish for the event, with its right key, plus one deeply nested field."""
    body = payload(
        "srs", "on_publish.json", client_id="c1", playback_id=playback_id, stream_key=stream_key
    )
    nested = '{"a":' * DEPTH + "1" + "}" * DEPTH
    return (body.rstrip().removesuffix("}") + f', "extra": {nested}}}').encode()


@pytest.mark.parametrize("hook", HOOKS)
async def test_deeply_nested_json_is_a_400_malformed_json(studio, hook):
    event = await studio.event()
    before = await studio.status(event)

    for body in (
        _deep_array(),
        _deep_inside_a_real_publish(event["ingest"]["stream_key"], event["playback_id"]),
    ):
        response = await studio.client.post(
            f"/api/streaming/hooks/{hook}",
            content=body,
            headers={**studio.hook_headers, "content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "malformed_json"

    assert await studio.status(event) == before  # the publish with the right key did not count


async def test_deeply_nested_brackets_in_a_form_post_are_a_bad_callback(studio):
    response = await studio.client.post(
        "/api/streaming/hooks/nginx-rtmp",
        content=_deep_array(),
        headers={**studio.hook_headers, "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_callback"


async def test_a_chunked_callback_body_over_the_limit_is_413(studio):
    async def chunks():
        for _ in range(20):
            yield b" " * 100_000

    response = await studio.client.post(
        "/api/streaming/hooks/srs",
        content=chunks(),
        headers={**studio.hook_headers, "content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab=&%+?2Fé0x ", max_size=40))
def test_a_form_body_reads_as_parse_qsl_reads_it(raw):
    """`query_args` (the form of nginx-rtmp, SRS's param, MediaMTX's query) gives what
    `parse_qsl` gives for any body: escapes, `+`, blanks, repeats, a leading `?`."""
    expected: dict[str, str] = {}
    for key, value in parse_qsl(raw.lstrip("?"), keep_blank_values=True):
        expected.setdefault(key, value)
    assert query_args(raw) == expected
