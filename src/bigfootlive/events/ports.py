"""What the events domain needs from the process state: the infrastructure and the
domain services below (`composition.AppState` provides them)."""

from __future__ import annotations

from typing import Protocol

from bigfootlive.events.playback import PlaybackTokens
from bigfootlive.mfa.ports import MfaState


class EventsState(MfaState, Protocol):
    playback_tokens: PlaybackTokens
