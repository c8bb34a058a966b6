"""Credentials in URLs and JWT-shaped strings are redacted from every rendered log line."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import structlog

from bigfootlive.observability.logging import QUERY_SECRETS, configure_logging, redact_text

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize("name", QUERY_SECRETS)
def test_each_credential_parameter_is_redacted(name: str) -> None:
    line = f'GET /path?a=1&{name}=s3cr3t-value&b=2 "x"'
    assert redact_text(line) == f'GET /path?a=1&{name}=[redacted]&b=2 "x"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ws/events/1?token=" + JWT, "/ws/events/1?token=[redacted]"),
        ("/cb?CODE=abc;State=xyz#frag", "/cb?CODE=[redacted];State=[redacted]#frag"),
        ("Authorization: Bearer " + JWT, "Authorization: Bearer [redacted]"),
        (
            "redirect=https%3A%2F%2Fapp%2Fdone%3Fcode%3Dabc%26x%3D1",
            "redirect=https%3A%2F%2Fapp%2Fdone%3Fcode%3D[redacted]%26x%3D1",
        ),
        ("SAMLResponse=PHNhbWw+&RelayState=r", "SAMLResponse=[redacted]&RelayState=r"),
        # Names that only contain a secret's name, and text without parameters, are left alone.
        ("/x?monkey=1&keyboard=2&tokens_left=3", "/x?monkey=1&keyboard=2&tokens_left=3"),
        ("a = b, code is fine", "a = b, code is fine"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_our_lines_and_other_libraries_lines_are_redacted(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("INFO", json=True)  # as create_app does
    # An in-process uvicorn started by an earlier test (log_level="warning") leaves its logger
    # at WARNING; a served process logs its access lines at INFO.
    uvicorn_error = logging.getLogger("uvicorn.error")
    monkeypatch.setattr(uvicorn_error, "level", logging.INFO)
    monkeypatch.setattr(uvicorn_error, "disabled", False)
    structlog.get_logger("bigfootlive.test").info("fetched", url=f"https://idp/x?code=abc&t={JWT}")
    structlog.get_logger("bigfootlive.test").info("object", url=httpx.URL(f"https://a/?sig={JWT}"))
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "1.2.3.4", f"/ws?token={JWT}"
    )
    try:
        raise ValueError(f"bad url /cb?state=xyz&id_token={JWT}")
    except ValueError:
        logging.getLogger("some.library").exception("failed")
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["url"] == "https://idp/x?code=[redacted]&t=[redacted]"
    assert lines[1]["url"] == "URL('https://a/?sig=[redacted]')"
    assert lines[2]["event"] == '1.2.3.4 - "WebSocket /ws?token=[redacted]" [accepted]'
    assert "state=[redacted]&id_token=[redacted]" in lines[3]["exception"]
    assert JWT not in out
    assert "xyz" not in out
    assert "abc" not in out
