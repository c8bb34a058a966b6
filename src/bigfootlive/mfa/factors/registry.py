"""Every factor and verification method, by the name the API and the database use."""

from __future__ import annotations

from bigfootlive.mfa.base import Factor, Method
from bigfootlive.mfa.factors.backup_codes import BackupCodes
from bigfootlive.mfa.factors.email import EmailFactor
from bigfootlive.mfa.factors.passkey import PasskeyFactor
from bigfootlive.mfa.factors.password import PasswordMethod
from bigfootlive.mfa.factors.sms import SmsFactor
from bigfootlive.mfa.factors.totp import TotpFactor
from bigfootlive.mfa.schemas import FactorOut
from bigfootlive.models import MfaFactor

FACTORS: dict[str, Factor] = {
    "totp": TotpFactor(),
    "webauthn": PasskeyFactor(),
    "email": EmailFactor(),
    "sms": SmsFactor(),
}
METHODS: dict[str, Method] = {
    **FACTORS,
    "backup_code": BackupCodes(),
    "password": PasswordMethod(),
}


def factor_of(factor_type: str) -> Factor:
    """The implementation of a factor type (`FactorType`, checked by the schemas)."""
    return FACTORS[factor_type]


def method_of(method: str) -> Method:
    """The implementation of a verification method (`VerifyMethod`, checked by the schemas)."""
    return METHODS[method]


def factor_out(factor: MfaFactor) -> FactorOut:
    return FactorOut(
        id=factor.id,
        type=factor.type,
        name=factor.name,
        confirmed=factor.confirmed_at is not None,
        destination=factor_of(factor.type).shown_destination(factor),
        created_at=factor.created_at,
        last_used_at=factor.last_used_at,
    )


def shown_name(factor: MfaFactor) -> str:
    """A factor as its owner reads it: its name, with its kind when the name is their own
    ("Phone (authenticator app)"; "Authenticator app" as it is)."""
    kind = factor_of(factor.type).default_name
    if factor.name.strip().casefold() == kind.casefold():
        return factor.name
    return f"{factor.name} ({kind.lower()})"
