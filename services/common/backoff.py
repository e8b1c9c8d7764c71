"""How long to wait before trying again: one exponential backoff for every reconnect and retry loop."""

from __future__ import annotations

import random
from collections.abc import Callable

# 2**64 times any sane initial delay is far past every cap; a larger exponent would overflow a float
_MAX_DOUBLINGS = 64


def backoff_delay(attempt: int, initial_s: float, max_s: float, jitter: float = 0.0,
                  rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``attempt`` failed tries in a row (1 = the first failure): ``initial_s``
    doubled for each further failure, never above ``max_s``.

    ``jitter`` (0 to 1) is the fraction of that wait drawn at random from ``rng`` (a draw in [0, 1]):
    0 waits exactly that long; 0.5 is "equal jitter", between half of it and all of it, so that
    clients that failed together do not all come back in the same instant.
    """
    doublings = min(max(0, attempt - 1), _MAX_DOUBLINGS)
    delay = min(max_s, initial_s * 2.0 ** doublings)
    if jitter <= 0:
        return delay
    draw = min(1.0, max(0.0, rng()))
    return delay * (1.0 - jitter) + delay * jitter * draw
