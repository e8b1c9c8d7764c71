"""The circuit breaker as a state machine over stored data.

    CLOSED --N consecutive failures--> OPEN --reset timeout--> HALF_OPEN
    HALF_OPEN --trial succeeds--> CLOSED;  HALF_OPEN --trial fails--> OPEN

pybreaker's model (fail_max, reset_timeout, one trial call when half-open) is
kept, but it is written here because pybreaker's storage interface is
synchronous (a Redis round trip would block the event loop) and its async path
needs tornado; and because replicas must agree on who runs the half-open trial,
which needs the whole transition applied atomically by the shared store. The
state is a plain dict so any store can hold it.
"""

from __future__ import annotations

import dataclasses
import enum


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclasses.dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    reset_timeout_s: float = 30.0
    trial_lease_s: float = 30.0  # a half-open trial not reported by then (its replica died) is given up


@dataclasses.dataclass(frozen=True)
class Admission:
    allowed: bool
    state: BreakerState  # the state after the decision
    trial: bool = False  # this call is the half-open trial
    retry_in_s: float = 0.0  # when refused: until the breaker half-opens


def state_of(data: dict | None) -> BreakerState:
    return BreakerState(data["state"]) if data else BreakerState.CLOSED


def _closed() -> dict:
    return {"state": BreakerState.CLOSED.value, "failures": 0, "opened_at": 0.0, "trial_at": 0.0}


def admit(data: dict | None, now: float, policy: BreakerPolicy) -> tuple[dict, Admission]:
    """May a call go through at ``now``? Returns the new data and the decision."""
    data = dict(data) if data else _closed()
    state = BreakerState(data["state"])
    if state is BreakerState.CLOSED:
        return data, Admission(True, state)
    if state is BreakerState.OPEN:
        half_open_at = data["opened_at"] + policy.reset_timeout_s
        if now < half_open_at:
            return data, Admission(False, state, retry_in_s=half_open_at - now)
        data.update(state=BreakerState.HALF_OPEN.value, trial_at=now)
        return data, Admission(True, BreakerState.HALF_OPEN, trial=True)
    # HALF_OPEN: one trial at a time; a trial whose owner vanished is replaced after its lease.
    if now < data["trial_at"] + policy.trial_lease_s:
        return data, Admission(False, state, retry_in_s=data["trial_at"] + policy.trial_lease_s - now)
    data.update(trial_at=now)
    return data, Admission(True, state, trial=True)


def record(data: dict | None, now: float, success: bool, policy: BreakerPolicy) -> dict:
    """Report a call's outcome at ``now``; returns the new data."""
    data = dict(data) if data else _closed()
    state = BreakerState(data["state"])
    if success:
        if state is BreakerState.OPEN:
            return data  # a call admitted before the breaker opened says nothing about now
        return _closed()
    if state is BreakerState.HALF_OPEN:
        data.update(state=BreakerState.OPEN.value, opened_at=now, failures=policy.failure_threshold)
        return data
    if state is BreakerState.CLOSED:
        failures = int(data["failures"]) + 1
        data["failures"] = failures
        if failures >= policy.failure_threshold:
            data.update(state=BreakerState.OPEN.value, opened_at=now)
    return data
