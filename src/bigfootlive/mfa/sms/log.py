from __future__ import annotations

import structlog

log = structlog.get_logger(__name__)


def mask_phone(number: str) -> str:
    return number[:3] + "*" * max(0, len(number) - 5) + number[-2:]


class LogSmsSender:
    """Development provider: writes the message to the log instead of sending it.

    The body (which holds the code) is logged only outside production, so a misconfigured
    production deployment fails closed (no code anywhere) rather than leaking codes to logs.
    """

    def __init__(self, *, reveal_body: bool) -> None:
        self.reveal_body = reveal_body

    async def send(self, to: str, body: str) -> None:
        if self.reveal_body:
            log.warning("sms_logged_not_sent", to=mask_phone(to), body=body)
        else:
            log.warning("sms_logged_not_sent", to=mask_phone(to), body="<hidden in production>")
