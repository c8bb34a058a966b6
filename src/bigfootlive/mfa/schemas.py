from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bigfootlive.identity.schemas import TokenPair
from bigfootlive.kit.credentials import Credentials
from bigfootlive.tenants.schemas import FactorType

VerifyMethod = Literal["totp", "webauthn", "email", "sms", "backup_code", "password"]
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"


class SetupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: FactorType
    name: str | None = Field(None, min_length=1, max_length=100)
    phone: str | None = Field(None, pattern=PHONE_PATTERN, description="E.164 number, for type=sms")
    challenge_token: str | None = Field(
        None,
        max_length=200,
        description="An enrolment challenge from sign-in, instead of a bearer token",
    )


class FactorOut(BaseModel):
    id: uuid.UUID
    type: str
    name: str
    confirmed: bool
    destination: str | None = Field(None, description="Masked email address or phone number")
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class TotpSetup(Credentials):
    secret: str
    otpauth_uri: str
    qr_svg: str


class SetupOut(BaseModel):
    factor: FactorOut
    totp: TotpSetup | None = None
    webauthn_options: dict[str, Any] | None = Field(
        None, description="PublicKeyCredentialCreationOptions for navigator.credentials.create"
    )
    code_sent_to: str | None = None
    expires_in: int


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    factor_id: uuid.UUID
    code: str | None = Field(None, max_length=20)
    credential: dict[str, Any] | None = Field(
        None, description="The PublicKeyCredential from navigator.credentials.create, as JSON"
    )
    challenge_token: str | None = Field(None, max_length=200)


class ConfirmOut(Credentials):
    factor: FactorOut
    backup_codes: list[str] | None = Field(
        None, description="Shown once, when the first factor is confirmed"
    )
    session: TokenPair | None = Field(
        None, description="Present when the confirmation completed an enrolment sign-in"
    )


class FactorList(BaseModel):
    factors: list[FactorOut]
    backup_codes_remaining: int


class BackupCodesOut(Credentials):
    backup_codes: list[str]


class ChallengePrepareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_token: str = Field(max_length=200)
    factor_id: uuid.UUID


class ChallengePrepareOut(BaseModel):
    factor_id: uuid.UUID
    type: str
    code_sent_to: str | None = None
    webauthn_options: dict[str, Any] | None = Field(
        None, description="PublicKeyCredentialRequestOptions for navigator.credentials.get"
    )
    expires_in: int


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_token: str = Field(max_length=200)
    method: VerifyMethod
    factor_id: uuid.UUID | None = None
    code: str | None = Field(None, max_length=32)
    credential: dict[str, Any] | None = None
    password: str | None = Field(None, max_length=128)


class StepUpOut(Credentials):
    """A fresh access token for the same session, now showing the verified factor."""

    status: Literal["stepped_up"] = "stepped_up"
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    access_token: str
    expires_in: int
    amr: list[str]


VerifyOut = Annotated[TokenPair | StepUpOut, Field(discriminator="status")]
