"""Back-off for loops that ask a media server (or another peer) which may be down: wait
0.5 s after the first failure, doubling with each failure in a row up to 30 s, and start again
from the beginning after a success. Pure arithmetic and a counter, no clock: the loops sleep
what `failed()` answers, and tests read the sequence without sleeping."""

from __future__ import annotations

FIRST_SECONDS = 0.5
CAP_SECONDS = 30.0


def backoff_delay(
    failures: int, *, first: float = FIRST_SECONDS, cap: float = CAP_SECONDS
) -> float:
    """Seconds to wait after `failures` failures in a row (1: `first`), doubling, capped."""
    if failures <= 0:
        return 0.0
    # 2 ** 60 * 0.5 s is far past any cap: no float overflow however long the peer is down
    return float(min(first * 2 ** min(failures - 1, 60), cap))


class Backoff:
    """The failures in a row of one loop, and the wait each one earns."""

    def __init__(self, *, first: float = FIRST_SECONDS, cap: float = CAP_SECONDS) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def failed(self) -> float:
        """One more failure in a row: the seconds to wait before trying again."""
        self.failures += 1
        return backoff_delay(self.failures, first=self.first, cap=self.cap)

    def succeeded(self) -> None:
        """It worked: the next failure waits `first` again."""
        self.failures = 0

    @property
    def failing(self) -> bool:
        return self.failures > 0
