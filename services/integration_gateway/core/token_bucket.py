"""A token bucket as a pure function over its stored state ``{"tokens", "at"}``.

The same function runs on every replica; the store applies it atomically (in
process, or in a Redis transaction), so replicas share one bucket.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    wait_s: float  # when not allowed: how long until one token is there


def capacity(rate_per_s: float, burst: int) -> float:
    return float(burst) if burst > 0 else max(1.0, rate_per_s)


def take(state: dict | None, now: float, rate_per_s: float, burst: int) -> tuple[dict, BucketDecision]:
    """Take one token at ``now``; returns the new state and whether it was there."""
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
