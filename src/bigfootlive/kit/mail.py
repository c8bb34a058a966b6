"""Outgoing email: SMTP when configured, otherwise files in an outbox folder (embedded mode).

The outbox keeps email bodies (which may hold reset links) out of the logs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog

from bigfootlive.config import Settings

log = structlog.get_logger(__name__)


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    message["Message-ID"] = f"<{uuid.uuid4()}@bigfootlive>"
    message.set_content(body)
    return message


class OutboxMailer:
    def __init__(self, sender: str, directory: str) -> None:
        self.sender = sender
        self.directory = Path(directory)

    async def send(self, to: str, subject: str, body: str) -> None:
        message = build_message(self.sender, to, subject, body)
        path = (
            self.directory / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
        )
        await asyncio.to_thread(self._write, path, message.as_bytes())
        log.info("mail_written_to_outbox", subject=subject, path=str(path))

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class SMTPMailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        message = build_message(s.mail_from, to, subject, body)
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls and not s.smtp_use_tls,
            use_tls=s.smtp_use_tls,
            timeout=10,
        )
        log.info("mail_sent", subject=subject)


def make_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SMTPMailer(settings)
    return OutboxMailer(settings.mail_from, settings.mail_outbox_dir)
