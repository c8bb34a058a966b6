from __future__ import annotations

from typing import Protocol


class SmsDeliveryError(Exception):
    """The provider refused or could not be reached; the message was not sent."""


class SmsSender(Protocol):
    async def send(self, to: str, body: str) -> None:
        """Send `body` to the E.164 number `to`; raise SmsDeliveryError when it cannot."""
        ...
