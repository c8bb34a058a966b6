"""What the analytics domain needs from the process state: the infrastructure and the
domain services below (`composition.AppState` provides them)."""

from __future__ import annotations

from typing import Protocol

from bigfootlive.analytics.ingest import BeaconBuffer
from bigfootlive.events.ports import EventsState


class AnalyticsState(EventsState, Protocol):
    beacons: BeaconBuffer
