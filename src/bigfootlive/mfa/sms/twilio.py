from __future__ import annotations

import httpx
import structlog

from bigfootlive.config import Settings
from bigfootlive.kit import jsonparse
from bigfootlive.mfa.sms.base import SmsDeliveryError

log = structlog.get_logger(__name__)


class TwilioSmsSender:
    """Twilio's Messages API (or any service speaking it): a form POST with basic auth.

    POST {base}/2010-04-01/Accounts/{sid}/Messages.json  To, From, Body  -> 201 {"sid": ...}
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
    ) -> None:
        self.account_sid = account_sid
        self.from_number = from_number
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSmsSender:
        sid, token, sender = (
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_from_number,
        )
        if not (sid and token and sender):
            raise ValueError(
                "SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                "TWILIO_FROM_NUMBER"
            )
        return cls(
            account_sid=sid,
            auth_token=token.get_secret_value(),
            from_number=sender,
            base_url=settings.twilio_api_base_url,
        )

    async def send(self, to: str, body: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(
                    self.url,
                    data={"To": to, "From": self.from_number, "Body": body},
                    auth=self._auth,
                )
        except httpx.HTTPError as exc:
            raise SmsDeliveryError(f"SMS provider unreachable: {type(exc).__name__}") from exc
        if response.status_code not in (200, 201):
            detail = ""
            try:
                payload = jsonparse.loads(response.content)
                detail = f"{payload.get('code')}: {payload.get('message')}"
            except ValueError:
                detail = response.text[:200]
            raise SmsDeliveryError(f"SMS provider answered {response.status_code} {detail}")
        try:
            sid = jsonparse.loads(response.content).get("sid", "")
        except ValueError:
            sid = ""
        log.info("sms_sent", provider="twilio", message_sid=sid)
