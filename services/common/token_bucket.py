"""A token bucket as a pure function over its state ``{"tokens", "at"}``.

Pure so that it serves both a bucket held in memory (the SIP guard's, one per source address) and
one held in a shared store, where the store applies it atomically (in process, or in a Redis
transaction) and the same function on every replica keeps one bucket between them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    wait_s: float  # when not allowed: how long until one token is there


def capacity(rate_per_s: float, burst: int) -> float:
    """How many tokens the bucket holds: ``burst``, or one second's worth (at least one) when that is 0."""
    return float(burst) if burst > 0 else max(1.0, rate_per_s)


def take(state: Mapping[str, float] | None, now: float, rate_per_s: float,
         burst: int) -> tuple[dict[str, float], BucketDecision]:
    """Take one token at ``now`` (a new bucket, ``state`` None, starts full); returns the new state and
    whether the token was there."""
    size = capacity(rate_per_s, burst)
    if state is None:
        tokens, at = size, now
    else:
        tokens, at = float(state["tokens"]), float(state["at"])
    elapsed = max(0.0, now - at)  # clocks of replicas may step back a little; never refill negatively
    tokens = min(size, tokens + elapsed * rate_per_s)
    if tokens >= 1.0:
        return {"tokens": tokens - 1.0, "at": max(now, at)}, BucketDecision(True, 0.0)
    wait = (1.0 - tokens) / rate_per_s if rate_per_s > 0 else float("inf")
    return {"tokens": tokens, "at": max(now, at)}, BucketDecision(False, wait)
