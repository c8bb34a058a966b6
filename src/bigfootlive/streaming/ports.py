"""What the streaming domain needs from the process state: the infrastructure and the
domain services below (`composition.AppState` provides them)."""

from __future__ import annotations

from typing import Protocol

from bigfootlive.analytics.ports import AnalyticsState
from bigfootlive.streaming.health import HealthMonitor


class StreamingState(AnalyticsState, Protocol):
    stream_health: HealthMonitor
