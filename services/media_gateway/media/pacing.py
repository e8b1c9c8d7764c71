"""A media clock on absolute deadlines (sans-I/O): tick k is due at ``start + k * interval``.

Deadlines never accumulate scheduling error, so a long call does not drift. When the process
was stalled past several deadlines, ``take`` reports them all at once: the sender sends ONE
frame and advances its RTP timestamp over the rest (no burst on the wire; the receiver sees a
timestamp jump and conceals), while the receive side may catch up by delivering several frames.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Due:
    ticks: int          # deadlines passed since the last take (0: too early)
    lateness: float     # seconds between the first of them and now


class PacingClock:
    def __init__(self, start: float, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self._start = start
        self._interval = interval
        self._next_tick = 0

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def ticks_taken(self) -> int:
        return self._next_tick

    def next_deadline(self) -> float:
        return self._start + self._next_tick * self._interval

    def take(self, now: float) -> Due:
        """Consume every deadline at or before ``now``."""
        first = self.next_deadline()
        if now < first:
            return Due(0, 0.0)
        passed = int((now - self._start) / self._interval) + 1 - self._next_tick
        passed = max(passed, 1)   # float rounding right at a deadline
        self._next_tick += passed
        return Due(passed, now - first)
