"""What the mfa domain needs from the process state: the infrastructure and the
domain services below (`composition.AppState` provides them)."""

from __future__ import annotations

from typing import Protocol

from bigfootlive.identity.ports import IdentityState
from bigfootlive.mfa.sms import SmsSender


class MfaState(IdentityState, Protocol):
    sms: SmsSender
