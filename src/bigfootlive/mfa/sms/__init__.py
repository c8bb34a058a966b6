"""Text messages for SMS one-time codes: a small interface, one module per provider."""

from __future__ import annotations

from bigfootlive.config import Settings
from bigfootlive.mfa.sms.base import SmsDeliveryError, SmsSender
from bigfootlive.mfa.sms.log import LogSmsSender
from bigfootlive.mfa.sms.twilio import TwilioSmsSender

__all__ = ["LogSmsSender", "SmsDeliveryError", "SmsSender", "TwilioSmsSender", "make_sms_sender"]


def make_sms_sender(settings: Settings) -> SmsSender:
    if settings.sms_provider == "twilio":
        return TwilioSmsSender.from_settings(settings)
    return LogSmsSender(reveal_body=settings.node_env != "production")
